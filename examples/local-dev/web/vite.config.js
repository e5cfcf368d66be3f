import { defineConfig } from 'vite';

// The browser talks only to frontgate (http://localhost:8080); Vite listens on loopback
// behind it. Vite's HMR client connects back to the page's own origin (frontgate), which
// forwards the WebSocket here, so no server.hmr settings are needed.
export default defineConfig({
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
  },
});

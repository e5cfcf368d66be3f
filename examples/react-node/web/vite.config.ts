import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The browser talks only to frontgate; in dev mode (run.sh dev) frontgate forwards pages,
// modules and the hot-reload WebSocket to this server on loopback ([frontend] dev_server),
// and the API calls to the Express backend. No server.proxy, no server.hmr settings.
export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  build: { outDir: 'dist', sourcemap: false },
});

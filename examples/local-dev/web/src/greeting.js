// Edit this string while `npm run dev` runs: the page updates without a reload (HMR).
export const greeting = 'Hello from Vite';

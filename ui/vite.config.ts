import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Relative base: the same dist/ is loaded by Tauri (frontendDist) and by `syncmon serve`.
export default defineConfig({
  base: './',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Strict CSP (script-src 'self'): no inline module preload polyfill.
    modulePreload: { polyfill: false },
  },
  server: {
    port: 5173,
    strictPort: true,
    // `npm run dev` against a running `syncmon serve` (token via #token=… as usual).
    // `syncmon serve` refuses a foreign Origin, so the proxy drops the dev server's.
    proxy: {
      '/api': {
        target: 'http://127.0.0.1:8384',
        changeOrigin: true,
        bypass: (req) => {
          delete (req as unknown as { headers: Record<string, unknown> }).headers.origin;
        },
      },
    },
  },
});

import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The web monitor's build: `vite build --config web/vite.config.ts` (part of `npm run build`)
 * writes index.html and content-hashed assets into `dist/web/`, where the manager serves them
 * (`src/manager/routes/web.ts`). `npx vite --config web/vite.config.ts` serves the monitor
 * with hot reload and proxies the API to a manager on :8642 (`npx drover dev`).
 */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  // Nothing from `public/` (none yet); keep the output to what the build emits.
  publicDir: false,
  build: {
    outDir: resolve(import.meta.dirname, '..', 'dist', 'web'),
    emptyOutDir: true,
    // The monitor runs in current desktop browsers only.
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { '/api': { target: 'http://127.0.0.1:8642', changeOrigin: false } },
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Tests that restart shared services run alone afterwards (vitest.serial.config.ts).
    exclude: ['test/serial/**', 'node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end tests start real processes; two cores are shared between files.
    fileParallelism: true,
    maxWorkers: 2,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * Tests that disturb shared services (they restart PostgreSQL): one file at a time, after
 * the parallel suite (`npm test` runs both).
 */
export default defineConfig({
  test: {
    include: ['test/serial/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});

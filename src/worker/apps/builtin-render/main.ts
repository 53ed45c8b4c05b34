/**
 * Entry point of the built-in renderer's process: `node dist/worker/apps/builtin-render/main.js
 * --frames 1,2,3 --output /out/frame_####.png …` (see `render-command.ts` for the flags).
 */
import { runRenderCommand } from './render-command.js';

process.exitCode = await runRenderCommand(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});

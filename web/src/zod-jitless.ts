/**
 * The route contract's schemas come into the monitor with zod, which by default probes
 * `new Function` once to speed up parsing. The monitor's Content-Security-Policy forbids
 * eval (and the monitor only builds requests from the schemas, never parses with them), so
 * zod is told not to try. Imported before anything that constructs a schema.
 */
import { config } from 'zod';

config({ jitless: true });

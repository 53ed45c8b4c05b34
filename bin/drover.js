#!/usr/bin/env node
// The package's command. The TypeScript sources are compiled to dist/ by `npm ci` (the
// `prepare` script) or `npm run build`.
import '../dist/cli/main.js';

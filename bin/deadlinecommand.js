#!/usr/bin/env node
// Deadline's `deadlinecommand`, speaking to a Drover manager (DROVER_URL, DROVER_TOKEN).
import { deadlineCommandMain } from '../dist/cli/deadline-main.js';

process.exitCode = await deadlineCommandMain(process.argv.slice(2), { background: false });

#!/usr/bin/env node
// Deadline's `deadlinecommandbg`: as `deadlinecommand`, its output written to
// dsubmitoutput.txt in the folder `-outputfiles DIR` names (default: the temp folder).
import { deadlineCommandMain } from '../dist/cli/deadline-main.js';

process.exitCode = await deadlineCommandMain(process.argv.slice(2), { background: true });

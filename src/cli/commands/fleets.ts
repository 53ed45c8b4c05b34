import type { Command } from 'commander';

/** Declares the fleets commands on `program`; `remote` adds --url/--token/--json. */
export function fleetCommands(
  _program: Command,
  _remote: (cmd: Command, json?: boolean) => Command,
): void {}

import type { Command } from 'commander';

/** Declares the versions commands on `program`; `remote` adds --url/--token/--json. */
export function versionCommands(
  _program: Command,
  _remote: (cmd: Command, json?: boolean) => Command,
): void {}

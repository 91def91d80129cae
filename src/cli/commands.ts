import type { Command } from 'commander';

/** One registrar per command module keeps main.ts stable while commands are added. */
export function registerCommands(program: Command): void {
  void program;
}

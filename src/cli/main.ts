#!/usr/bin/env node
import { Command } from 'commander';
import { registerCommands } from './commands.js';
import { PACKAGE_VERSION } from '../config/package-version.js';

const program = new Command();
program
  .name('bgserve')
  .description('Serve an ML model over HTTP and release new versions blue-green or canary.')
  .version(PACKAGE_VERSION)
  // Program options only before the command: `export-onnx --version 2.0.0` is the command's own option.
  .enablePositionalOptions()
  .showHelpAfterError();
registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bgserve: ${message}\n`);
  process.exit(1);
});

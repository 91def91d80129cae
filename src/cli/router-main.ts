#!/usr/bin/env node
/**
 * Entry point of the router process `bgserve up` spawns (`router-main.js router ...`, the same arguments as the
 * hidden `bgserve router`). Apart from main.js so that the process loads the router alone, not every command's
 * modules (the Fastify app, the model runtimes): about half the memory.
 */
import { Command } from 'commander';
import { registerRouter } from './router.js';

const program = new Command().name('bgserve');
registerRouter(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bgserve router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * The docs name only what the CLI has: every `npx bgserve <verb> --flag` in README.md and docs/*.md is a verb
 * whose `--help` lists that flag, and every BGSERVE_* variable they name is read somewhere in src/ or Compose.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../src/cli/commands.js';
import { ROOT } from '../support/processes.js';
import { cliCalls, envVars, readDocs } from './doc-sources.js';

function program(): Command {
  const p = new Command().name('bgserve');
  registerCommands(p);
  return p;
}

function sourceText(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && (e.name.endsWith('.ts') || e.name.endsWith('.sh')))
    .map((e) => readFileSync(path.join(e.parentPath, e.name), 'utf8'))
    .join('\n');
}

const docs = readDocs();

describe('docs true to the CLI', () => {
  it('finds the calls it checks (the quick start among them)', () => {
    const calls = docs.flatMap(cliCalls);
    expect(calls.length).toBeGreaterThan(30);
    expect(calls).toContainEqual({ where: expect.stringMatching(/^README\.md:/), verb: 'load', flags: ['--rate', '--duration'] });
  });

  it('every `npx bgserve <verb> --flag` is a verb whose --help lists the flag', () => {
    const commands = new Map(program().commands.map((c) => [c.name(), c]));
    const problems: string[] = [];
    for (const call of docs.flatMap(cliCalls)) {
      const cmd = commands.get(call.verb);
      if (!cmd) {
        problems.push(`${call.where}: no verb "${call.verb}"`);
        continue;
      }
      const help = cmd.helpInformation();
      for (const flag of call.flags) {
        if (!new RegExp(`(^|[\\s,])${flag}([\\s,]|$)`, 'm').test(help)) problems.push(`${call.where}: ${call.verb} has no ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every BGSERVE_* variable the docs name is read in src/ (or, for Compose settings, in the Compose files)', () => {
    const compose = readdirSync(ROOT)
      .filter((f) => /^docker-compose.*\.ya?ml$/.test(f))
      .map((f) => readFileSync(path.join(ROOT, f), 'utf8'));
    const src = [sourceText(path.join(ROOT, 'src')), ...compose].join('\n');
    const named = [...new Set(docs.flatMap(envVars))];
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((v) => !src.includes(v))).toEqual([]);
  });

  it('no --help shows a duration default as a bare number of milliseconds', () => {
    const offenders = program()
      .commands.flatMap((c) => c.options.map((o) => ({ c: c.name(), o })))
      .filter(({ o }) => /<duration>/.test(o.flags) && typeof o.defaultValue === 'number' && !o.defaultValueDescription)
      .map(({ c, o }) => `${c} ${o.long}`);
    expect(offenders).toEqual([]);
  });
});

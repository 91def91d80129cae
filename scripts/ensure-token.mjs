#!/usr/bin/env node
// Creates a random token file unless it exists (mode 600), race-free: several containers may start at once
// and must all end up with the same token, so the file is written aside and hard-linked into place (link
// fails if another process won). Usage: node scripts/ensure-token.mjs <file>
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: ensure-token.mjs <file>\n');
  process.exit(2);
}
mkdirSync(path.dirname(file), { recursive: true });
const aside = `${file}.${process.pid}`;
writeFileSync(aside, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
try {
  linkSync(aside, file);
} catch (err) {
  if (err.code !== 'EEXIST') throw err;
} finally {
  unlinkSync(aside);
}

/** Writes deploy/nginx/seed.conf from the same renderer the controller uses: `npx tsx deploy/nginx/generate.ts`. */
import { writeFile } from 'node:fs/promises';
import { renderComposeSeed } from './compose.js';

const target = new URL('./seed.conf', import.meta.url);
await writeFile(target, renderComposeSeed());
process.stdout.write(`wrote ${target.pathname}\n`);

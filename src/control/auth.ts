/**
 * Bearer tokens: generated once into a file only the owner can read, compared in constant time.
 * The same helper makes the instances' admin token file.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Reads the token in `file`, creating the file (mode 0600, its folder 0700) with a fresh token if missing. */
export async function ensureTokenFile(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // An existing file keeps its token, but never stays readable by others.
    await chmod(file, 0o600);
  }
  return readTokenFile(file);
}

export async function readTokenFile(file: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim();
  if (token === '') throw new Error(`token file ${file} is empty`);
  return token;
}

/** Constant-time comparison; hashing first makes the lengths equal without leaking the real one. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** onRequest hook: 401 without a bearer token, 403 with a wrong one. */
export function bearerAuth(token: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      reply.header('www-authenticate', 'Bearer realm="bgserve"');
      await reply.code(401).send({ error: 'unauthorized', message: 'a bearer token is required (see the token file in the state dir)' });
      return reply;
    }
    if (!tokenMatches(match[1], token)) {
      await reply.code(403).send({ error: 'forbidden', message: 'the bearer token is not valid' });
      return reply;
    }
  };
}

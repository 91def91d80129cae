/**
 * Who is moving traffic by hand: the CLI sends user@host in ACTOR_HEADER; any other client is known by its
 * address. A module of its own so the CLI can name the header without loading the control server.
 */
import type { FastifyRequest } from 'fastify';

export const ACTOR_HEADER = 'x-bgserve-actor';

/** The claimed actor, printable and short (it ends up in the release log), else the client address. */
export function actorOf(request: FastifyRequest): string {
  const given = request.headers[ACTOR_HEADER];
  const actor = typeof given === 'string' ? given.replace(/[^\x21-\x7e]/g, '').slice(0, 80) : '';
  return actor !== '' ? actor : request.ip;
}

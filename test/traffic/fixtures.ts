import Fastify, { type FastifyInstance } from 'fastify';
import { SOURCE_HEADER, type Color } from '../../src/config/defaults.js';

/** A plain Fastify upstream that answers like an instance: its color in /predict answers, /ready it can flip. */
export interface ColorUpstream {
  app: FastifyInstance;
  port: number;
  color: Color;
  predicts: number;
  /** Requests the router labelled as mirrored copies (SOURCE_HEADER). */
  mirrored: number;
  ready: boolean;
  /** Status the next N /predict calls answer with (e.g. 503), then back to 200. */
  failNext: { status: number; count: number };
  /** Headers of the last /predict request, as the instance got them. */
  lastHeaders: Record<string, unknown> | null;
  close(): Promise<void>;
}

export async function startColorUpstream(color: Color, port = 0): Promise<ColorUpstream> {
  const app = Fastify();
  const up: ColorUpstream = {
    app,
    port: 0,
    color,
    predicts: 0,
    mirrored: 0,
    ready: true,
    failNext: { status: 503, count: 0 },
    lastHeaders: null,
    close: () => app.close(),
  };
  app.get('/ready', async (_req, reply) => reply.code(up.ready ? 200 : 503).send({ ready: up.ready }));
  app.get('/health', async () => ({ status: 'ok', color, model: { name: 'wine-quality', version: '1.0.0' } }));
  app.post('/predict', async (req, reply) => {
    up.lastHeaders = req.headers;
    if (req.headers[SOURCE_HEADER] === 'mirror') up.mirrored++;
    else up.predicts++;
    if (up.failNext.count > 0) {
      up.failNext.count--;
      return reply.code(up.failNext.status).send({ error: 'unavailable', message: 'failing on purpose' });
    }
    return { prediction: 5.5, color, echo: req.body };
  });
  await app.listen({ host: '127.0.0.1', port });
  up.port = (app.server.address() as { port: number }).port;
  return up;
}

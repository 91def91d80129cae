/** The judge as a process of its own (`bgserve judge`): its routes, /health, and the one error shape. */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { UpstreamError } from './client.js';
import { JudgeRequestError, judgeRoutes, type JudgeTargets } from './routes.js';

export function buildJudgeServer(targets: JudgeTargets): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ status: 'ok' }));
  app.register(judgeRoutes(targets));
  app.setErrorHandler((err: FastifyError | Error, _request, reply) => {
    if (err instanceof JudgeRequestError) return reply.code(400).send({ error: 'bad_request', message: err.message, details: err.details });
    // Neither version's answer could be had: no verdict, and a status that fails a Flagger webhook too.
    if (err instanceof UpstreamError) return reply.code(502).send({ error: 'upstream_unavailable', message: err.message });
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500)
      return reply.code(status).send({ error: status === 400 ? 'invalid_json' : 'bad_request', message: err.message });
    return reply.code(500).send({ error: 'internal_error', message: err.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'not_found', message: `no route ${request.method} ${request.url}; try GET /judge/golden or /judge/agreement` }),
  );
  return app;
}

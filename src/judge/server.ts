/** The judge as a process of its own (`bgserve judge`): its routes, /health, and the one error shape. */
import Fastify, { type FastifyInstance } from 'fastify';
import { judgeRoutes, type JudgeTargets } from './routes.js';

export function buildJudgeServer(targets: JudgeTargets): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ status: 'ok' }));
  app.register(judgeRoutes(targets));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'not_found', message: `no route ${request.method} ${request.url}; try GET /judge/golden or /judge/agreement` }),
  );
  return app;
}

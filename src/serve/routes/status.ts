/** Liveness (/health), readiness (/ready) and the Prometheus scrape (/metrics). */
import type { FastifyInstance } from 'fastify';
import type { ServePluginOptions } from '../context.js';

const IDENTITY_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'sha256', 'format'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    sha256: { type: 'string' },
    format: { type: 'string' },
  },
} as const;

const READY_SCHEMA = {
  type: 'object',
  required: ['ready', 'state'],
  properties: { ready: { type: 'boolean' }, state: { type: 'string', enum: ['serving', 'loading', 'draining'] } },
} as const;

export async function statusRoutes(app: FastifyInstance, { ctx }: ServePluginOptions): Promise<void> {
  const { holder, metrics, color, startedAt } = ctx;

  app.get(
    '/health',
    {
      schema: {
        summary: 'Liveness and the model being served',
        response: {
          200: {
            type: 'object',
            required: ['status', 'state', 'model', 'color', 'uptimeSeconds', 'pid'],
            properties: {
              status: { type: 'string', enum: ['ok'] },
              state: READY_SCHEMA.properties.state,
              model: IDENTITY_SCHEMA,
              color: { type: 'string' },
              uptimeSeconds: { type: 'number' },
              pid: { type: 'integer' },
            },
          },
        },
      },
    },
    async () => ({
      status: 'ok',
      state: holder.state,
      model: holder.current.identity,
      color,
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      pid: process.pid,
    }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: 503 while a model loads or the instance drains',
        response: { 200: READY_SCHEMA, 503: READY_SCHEMA },
      },
    },
    async (_request, reply) => {
      const state = holder.state;
      reply.code(state === 'serving' ? 200 : 503);
      return { ready: state === 'serving', state };
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_request, reply) => {
    const text = await metrics.text();
    return reply.type(metrics.contentType).send(text);
  });
}

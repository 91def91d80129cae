/** OpenAPI generated from the route schemas, and Swagger UI at /docs (the document at /docs/json). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ERROR_STATUS } from './errors.js';

export const DOCS_PREFIX = '/docs';

/** The error contract, listed in the document itself so that clients see every stable code. */
export function errorContract(): string {
  const rows = Object.entries(ERROR_STATUS).map(([code, status]) => `| ${status} | \`${code}\` |`);
  return [
    'Every error answers `{"error": "<code>", "message": "...", "details": [{"field": "...", "problem": "..."}]}`',
    '(details when fields are at fault, all of them listed) and is counted in `predict_errors_total{reason="<code>"}`.',
    'Unreadable JSON is 400, a body over the byte limit or a batch over the row limit 413, a content type other',
    'than application/json 415, a readable body that breaks the schema (missing, unknown, non-numeric or',
    'non-finite fields) 422.',
    'Prediction metrics also carry `source`: `preview` or `mirror` when a router marks the request so in',
    '`x-bgserve-source`, else `live`.',
    '',
    '| status | error |',
    '|---|---|',
    ...rows,
  ].join('\n');
}

/** Register before the routes: @fastify/swagger collects routes as they are added. */
export function registerDocs(app: FastifyInstance, model: { name: string; version: string }): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'bgserve model instance',
        description: `Serves the model bundle ${model.name} ${model.version} (at start-up).\n\n${errorContract()}`,
        version: model.version,
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}

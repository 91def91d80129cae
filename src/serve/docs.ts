/** OpenAPI generated from the route schemas, and Swagger UI at /docs (the document at /docs/json). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export const DOCS_PREFIX = '/docs';

/** Register before the routes: @fastify/swagger collects routes as they are added. */
export function registerDocs(app: FastifyInstance, model: { name: string; version: string }): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'bgserve model instance',
        description: `Serves the model bundle ${model.name} ${model.version} (at start-up). Errors answer {error, message, details}.`,
        version: model.version,
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}

/**
 * POST /admin/model: load another bundle into the running instance, verify it, swap atomically.
 * Releases use it to put a new model on the idle color. A refused bundle leaves the current one serving.
 * Bundles load only from the instance's bundle roots (bundle-roots.ts): the token opens model loads, not
 * the host's files.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BundleError, BundleRoots, loadBundle } from '../../model/bundle.js';
import type { ServePluginOptions } from '../context.js';
import { ApiError, ERROR_BODY_SCHEMA } from '../errors.js';

export const ADMIN_MODEL_ROUTE = '/admin/model';
/** Recent answers to requests that carried an id, for the controller's paired shadow comparison. */
export const ADMIN_PREDICTIONS_ROUTE = '/admin/predictions';

export interface AdminOptions extends ServePluginOptions {
  /** Bearer token; when absent the admin API answers 403 admin_disabled. */
  adminToken?: string;
  /** The folders bundles may be loaded from, symlinks resolved. */
  bundleRoots: readonly string[];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Compares digests so the comparison takes the same time whatever the token's length or content. */
export function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match !== null && timingSafeEqual(digest(match[1]), expected);
}

const IDENTITY = {
  type: 'object',
  required: ['name', 'version', 'sha256', 'format'],
  properties: { name: { type: 'string' }, version: { type: 'string' }, sha256: { type: 'string' }, format: { type: 'string' } },
} as const;

export async function adminRoutes(app: FastifyInstance, opts: AdminOptions): Promise<void> {
  const { holder } = opts.ctx;
  const metrics = opts.ctx.metrics;
  const expected = opts.adminToken ? digest(opts.adminToken) : undefined;
  const roots = new BundleRoots(opts.bundleRoots);

  // Runs before the body is read: an unauthenticated caller gets 401/403 whatever it sent.
  async function authorize(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (expected === undefined) {
      throw new ApiError('admin_disabled', 'admin disabled: start the instance with --admin-token-file or BGSERVE_ADMIN_TOKEN');
    }
    if (!bearerMatches(request.headers.authorization, expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new ApiError('unauthorized', 'a valid "Authorization: Bearer <token>" header is required');
    }
  }

  app.get<{ Querystring: { since?: string; limit?: string } }>(
    ADMIN_PREDICTIONS_ROUTE,
    {
      onRequest: authorize,
      schema: {
        summary: 'Recent predictions to requests that carried an x-request-id (inputs included), from a cursor',
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            // Strings: the instance's validator coerces no types (validation.ts).
            since: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'cursor: the `next` of the previous page (default 0)' },
            limit: {
              type: 'string',
              pattern: '^[0-9]{1,15}$',
              description: 'records at most (default and maximum: the capacity); 0 gives the end cursor',
            },
          },
        },
        response: { '4xx': ERROR_BODY_SCHEMA },
      },
    },
    async (request) => {
      const { predictions } = opts.ctx;
      const { since = '0', limit } = request.query;
      const most = Math.min(predictions.capacity, limit === undefined ? predictions.capacity : Number(limit));
      return { capacity: predictions.capacity, ...predictions.since(Number(since), most) };
    },
  );

  app.post<{ Body: { bundle: string; allowFeatureChange?: boolean } }>(
    ADMIN_MODEL_ROUTE,
    {
      onRequest: authorize,
      schema: {
        summary: 'Load another model bundle and swap to it atomically',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['bundle'],
          properties: {
            bundle: {
              type: 'string',
              minLength: 1,
              description:
                'bundle folder on the instance, inside one of its bundle roots (serve --bundle-root), e.g. models/wine-quality/1.1.0',
            },
            allowFeatureChange: {
              type: 'boolean',
              description: 'accept a bundle whose features differ from the current model (default false)',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['model', 'previous'],
            properties: { model: IDENTITY, previous: IDENTITY },
          },
          '4xx': ERROR_BODY_SCHEMA,
        },
      },
    },
    async (request) => {
      if (!holder.beginLoad()) {
        throw new ApiError('load_in_progress', `another model load is under way or the instance is ${holder.state}`);
      }
      try {
        const dir = path.resolve(request.body.bundle);
        const expectedFeatures = request.body.allowFeatureChange ? undefined : holder.current.featureNames;
        let model;
        try {
          model = await loadBundle(dir, { expectedFeatures, roots });
        } catch (err) {
          if (!(err instanceof BundleError)) throw err;
          metrics.modelLoad('refused');
          request.log.warn({ bundle: dir, code: err.code, problem: err.message }, 'model bundle refused');
          throw new ApiError('bundle_refused', err.message, [{ field: 'bundle', problem: err.code }]);
        }
        const previous = holder.swap(model);
        metrics.modelLoad('loaded');
        request.log.info({ bundle: dir, model: holder.current.identity, previous: previous.identity }, 'model swapped');
        return { model: holder.current.identity, previous: previous.identity };
      } finally {
        holder.endLoad();
      }
    },
  );
}

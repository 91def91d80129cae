/**
 * The release half of the control API (under /api, behind the token):
 *   POST /releases                 start a release {bundle, strategy?, steps?, shadowMs?, analysisMs?, ...}
 *   GET  /releases                 history, newest first (?limit=N)
 *   GET  /releases/current         the live release, else the latest one
 *   GET  /releases/:id             one release with its events
 *   GET  /releases/:id/events      its events from ?after=N on (for progress following)
 *   POST /releases/current/:command  promote | abort | rollback | pause | resume
 */
import type { FastifyInstance } from 'fastify';
import { DeployError, type DeployOptions, type ReleaseController } from '../controller/controller.js';
import type { Command, ReleaseEvent, ReleaseState } from '../release/types.js';
import type { ReleaseStore } from '../store/release-store.js';
import { ControlError, type ControlPlugin, type ReleasePort } from './context.js';

export const COMMANDS: readonly Command[] = ['promote', 'abort', 'rollback', 'pause', 'resume'];

const DEPLOY_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['bundle'],
  properties: {
    bundle: { type: 'string', minLength: 1, description: 'bundle folder, e.g. models/wine-quality/1.1.0' },
    strategy: { type: 'string', enum: ['bluegreen', 'canary'] },
    steps: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 100 } },
    shadowMs: { type: 'integer', minimum: 0 },
    shadowPercent: { type: 'integer', minimum: 1, maximum: 100 },
    analysisMs: { type: 'integer', minimum: 0 },
    inconclusiveGraceMs: { type: 'integer', minimum: 0 },
    goldenRmseMargin: { type: 'number', minimum: 0 },
  },
} as const;

const STATUS_BY_CODE: Record<DeployError['code'], number> = {
  release_in_progress: 409,
  bundle_refused: 422,
  invalid_release: 400,
  no_release: 404,
};

function controlError(err: unknown): unknown {
  if (err instanceof DeployError) {
    const details = Object.fromEntries((err.details ?? []).map((d) => [d.field, d.problem]));
    if (err.release) details.release = err.release.spec.id;
    return new ControlError(STATUS_BY_CODE[err.code], err.code, err.message, Object.keys(details).length ? details : undefined);
  }
  return err;
}

export interface ReleaseView {
  release: ReleaseState;
  events: ReleaseEvent[];
}

/** Routes over an existing controller. */
export function releaseRoutes(controller: ReleaseController): ControlPlugin {
  return async (api: FastifyInstance) => {
    api.post<{ Body: DeployOptions & { bundle: string } }>('/releases', { schema: { body: DEPLOY_BODY } }, async (request, reply) => {
      const { bundle, ...options } = request.body;
      try {
        const release = await controller.deploy(bundle, options);
        return reply.code(201).send({ release, events: controller.events(release.spec.id) } satisfies ReleaseView);
      } catch (err) {
        throw controlError(err);
      }
    });

    api.get<{ Querystring: { limit?: string } }>('/releases', async (request) => {
      const limit = Number(request.query.limit ?? 20);
      if (!Number.isInteger(limit) || limit < 1) throw new ControlError(400, 'bad_request', 'limit must be a positive integer');
      return { releases: controller.history(limit) };
    });

    const find = (id: string): ReleaseState => {
      const release = id === 'current' ? controller.current() : controller.history(10_000).find((r) => r.spec.id === id);
      if (!release)
        throw new ControlError(
          404,
          'no_release',
          id === 'current' ? 'no release yet: start one with `bgserve deploy <bundle>`' : `no release ${id}`,
        );
      return release;
    };

    api.get<{ Params: { id: string } }>('/releases/:id', async (request) => {
      const release = find(request.params.id);
      return { release, events: controller.events(release.spec.id) } satisfies ReleaseView;
    });

    api.get<{ Params: { id: string }; Querystring: { after?: string } }>('/releases/:id/events', async (request) => {
      const release = find(request.params.id);
      const after = Number(request.query.after ?? 0);
      if (!Number.isInteger(after) || after < 0) throw new ControlError(400, 'bad_request', 'after must be a non-negative integer');
      const events = controller.events(release.spec.id);
      return { release, events: events.slice(after), next: events.length };
    });

    api.post<{ Params: { command: string } }>('/releases/current/:command', async (request) => {
      const command = request.params.command as Command;
      if (!COMMANDS.includes(command)) {
        throw new ControlError(404, 'not_found', `unknown release command ${command} (${COMMANDS.join(', ')})`);
      }
      try {
        const { state, events } = await controller.command(command);
        const refused = events.find((e) => e.type === 'command-refused');
        if (refused) throw new ControlError(409, 'command_refused', refused.reason, { release: state.spec.id, status: state.status });
        return { release: state, events } satisfies ReleaseView;
      } catch (err) {
        throw controlError(err);
      }
    });
  };
}

/** What the traffic routes and status see of the controller (see ReleasePort). */
export function releasePort(controller: ReleaseController, store: Pick<ReleaseStore, 'file' | 'damage'>): ReleasePort {
  return {
    current: () => controller.current(),
    async yieldTraffic(reason) {
      let out = await controller.command('pause', { reason });
      if (out.state.status === 'running') {
        // Before its checks pass (loading, smoke) a release cannot pause: it would still move traffic itself
        // once they pass. It has moved none yet, so ending it undoes nothing of the manual change.
        out = await controller.command('abort', { reason });
      }
      return out.state;
    },
    log: { file: store.file, damage: store.damage },
  };
}

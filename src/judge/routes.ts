/**
 * The judge's HTTP routes: GET or POST /judge?check=golden|agreement|all, and /judge/golden, /judge/agreement.
 * Each request sends the golden rows to both versions and judges the answers afresh.
 *
 * The status code carries the verdict, so a Flagger webhook (pre-rollout, rollout: 200 passes, anything else
 * fails the check and is retried at the next interval) uses the route as it is: 200 pass, 412 fail, 503
 * inconclusive. Argo Rollouts' web provider counts any non-2xx as a measurement *error*, not a failure, so its
 * templates ask `report=true`: always 200, the verdict in the body for jsonPath. The body always says why.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { GoldenSet } from './golden-set.js';
import { predictAll, UpstreamError } from './client.js';
import { JUDGE_CHECKS, judge, type JudgeCheck, type Verdict } from './verdict.js';

export interface JudgeTargets {
  stable: string;
  candidate: string;
  golden: GoldenSet;
  /** Upper bounds of the instances' prediction histogram. */
  buckets: readonly number[];
  goldenRmseMargin?: number;
  timeoutMs?: number;
}

export const VERDICT_STATUS: Record<Verdict, number> = { pass: 200, fail: 412, inconclusive: 503 };

/** A request the judge refuses: 400 {error, message, details?}. */
export class JudgeRequestError extends Error {
  constructor(
    message: string,
    readonly details?: Array<{ field: string; problem: string }>,
  ) {
    super(message);
    this.name = 'JudgeRequestError';
  }
}

const PARAMS = ['check', 'report'] as const;
type Params = Partial<Record<(typeof PARAMS)[number], string>>;

/** Query parameters, then the string metadata of a Flagger webhook's payload ({name, namespace, phase, metadata}). */
function readParams(query: unknown, body: unknown): Params {
  const problems: Array<{ field: string; problem: string }> = [];
  const take = (source: unknown, where: string): Params => {
    if (source === undefined || source === null) return {};
    if (typeof source !== 'object' || Array.isArray(source)) {
      problems.push({ field: where, problem: 'must be an object' });
      return {};
    }
    const out: Params = {};
    for (const [k, v] of Object.entries(source)) {
      if (!(PARAMS as readonly string[]).includes(k))
        problems.push({ field: `${where}.${k}`, problem: `unknown; expected ${PARAMS.join(', ')}` });
      else if (typeof v !== 'string') problems.push({ field: `${where}.${k}`, problem: 'must be a single string' });
      else out[k as keyof Params] = v;
    }
    return out;
  };
  const fromQuery = take(query, 'query');
  let fromBody: Params = {};
  if (body !== undefined && body !== null && body !== '') {
    if (typeof body !== 'object' || Array.isArray(body)) problems.push({ field: 'body', problem: 'must be a JSON object' });
    else fromBody = take((body as { metadata?: unknown }).metadata, 'body.metadata');
  }
  if (problems.length) throw new JudgeRequestError(`bad judge request: ${problems.length} problem(s)`, problems);
  return { ...fromBody, ...fromQuery };
}

function parseRequest(pathCheck: JudgeCheck | undefined, query: unknown, body: unknown): { check: JudgeCheck; report: boolean } {
  const p = readParams(query, body);
  const check = p.check ?? pathCheck ?? 'all';
  if (!(JUDGE_CHECKS as readonly string[]).includes(check))
    throw new JudgeRequestError(`check must be one of ${JUDGE_CHECKS.join(', ')}`, [
      { field: 'check', problem: `got ${JSON.stringify(check)}` },
    ]);
  if (pathCheck && check !== pathCheck)
    throw new JudgeRequestError(`this route judges ${pathCheck}; check=${check} contradicts it`, [
      { field: 'check', problem: 'contradicts the path' },
    ]);
  if (p.report !== undefined && p.report !== 'true' && p.report !== 'false')
    throw new JudgeRequestError('report must be true or false', [{ field: 'report', problem: `got ${JSON.stringify(p.report)}` }]);
  return { check: check as JudgeCheck, report: p.report === 'true' };
}

/**
 * The routes over fixed targets (`bgserve judge`), or over targets resolved on each request (the controller,
 * whose stable and candidate colors change with every release).
 */
export function judgeRoutes(source: JudgeTargets | (() => Promise<JudgeTargets>)) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // Scoped to these routes, so the judge answers its own errors alike wherever it is mounted.
    app.setErrorHandler((err: FastifyError | Error, _request, reply) => {
      if (err instanceof JudgeRequestError)
        return reply.code(400).send({ error: 'bad_request', message: err.message, details: err.details });
      // Neither version's answer could be had: no verdict, and a status that fails a Flagger webhook too.
      if (err instanceof UpstreamError) return reply.code(502).send({ error: 'upstream_unavailable', message: err.message });
      const fe = err as FastifyError & { code?: string };
      const status = fe.statusCode;
      if (status !== undefined && status >= 400 && status < 500)
        return reply.code(status).send({ error: status === 400 ? 'invalid_json' : (fe.code ?? 'bad_request'), message: err.message });
      return reply.code(500).send({ error: 'internal_error', message: err.message });
    });
    const answer = async (pathCheck: JudgeCheck | undefined, query: unknown, body: unknown, reply: FastifyReply) => {
      const { check, report } = parseRequest(pathCheck, query, body);
      const targets = typeof source === 'function' ? await source() : source;
      const { rows, labels } = targets.golden;
      const [stable, candidate] = await Promise.all([
        predictAll('stable', targets.stable, rows, targets.timeoutMs),
        predictAll('candidate', targets.candidate, rows, targets.timeoutMs),
      ]);
      const result = judge(
        {
          labels,
          stable: stable.predictions,
          candidate: candidate.predictions,
          buckets: targets.buckets,
          goldenRmseMargin: targets.goldenRmseMargin,
        },
        check,
      );
      return reply.code(report ? 200 : VERDICT_STATUS[result.verdict]).send({
        ...result,
        stable: { url: targets.stable, version: stable.model.version ?? null },
        candidate: { url: targets.candidate, version: candidate.model.version ?? null },
      });
    };
    for (const [url, check] of [
      ['/judge', undefined],
      ['/judge/golden', 'golden'],
      ['/judge/agreement', 'agreement'],
    ] as const) {
      app.get(url, (req, reply) => answer(check, req.query, undefined, reply));
      app.post(url, (req, reply) => answer(check, req.query, req.body, reply));
    }
  };
}

export { UpstreamError };

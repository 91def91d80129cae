/**
 * One worker of the router cluster (router-cluster.ts): an embedded router on the shared port, configured by the
 * primary alone. Messages are handled one at a time, in order, so an ack means every earlier change is in
 * effect too. The worker takes no signal of its own (a Ctrl-C reaches the whole process group; the primary
 * stops its workers in order) and exits as soon as its IPC channel closes: a primary killed with -9 leaves no
 * worker behind.
 */
import type { EmbeddedRouter } from './embedded-router.js';
import { startEmbeddedRouter } from './embedded-router.js';
import type { FromWorker, ToWorker, WorkerConfig } from './router-cluster-protocol.js';

const send = (m: FromWorker): void => {
  process.send?.(m);
};

/** Runs until the primary says stop or goes away; never resolves. */
export function runRouterWorker(): Promise<never> {
  let router: EmbeddedRouter | null = null;
  let applied: WorkerConfig | null = null;
  let chain: Promise<void> = Promise.resolve();

  const apply = async (config: WorkerConfig): Promise<void> => {
    if (router === null || applied === null) throw new Error('not started');
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const { state } = config;
    if (!same(state.weights, applied.state.weights)) await router.setWeights(state.weights);
    if (!same(state.mirror, applied.state.mirror)) await router.setMirror(state.mirror);
    if (!same(state.sticky, applied.state.sticky)) await router.setSticky(state.sticky);
    if (!same(config.upstreams, applied.upstreams)) await router.setUpstreams(config.upstreams);
    applied = config;
  };

  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.type) {
      case 'init':
        try {
          router = await startEmbeddedRouter({
            host: m.listen.host,
            port: m.listen.port,
            upstreams: m.config.upstreams,
            initial: m.config.state,
            previewToken: m.config.previewToken,
          });
          applied = m.config;
          send({ type: 'ready', port: router.port, health: router.health() });
        } catch (err) {
          send({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
          process.exit(1);
        }
        return;
      case 'apply':
        try {
          await apply(m.config);
          send({ type: 'ack', id: m.id });
        } catch (err) {
          send({ type: 'ack', id: m.id, error: err instanceof Error ? err.message : String(err) });
        }
        return;
      case 'health':
        if (router) send({ type: 'health', id: m.id, report: router.health() });
        return;
      case 'metrics':
        if (router) send({ type: 'metrics', id: m.id, metrics: await router.metrics.getMetricsAsJSON() });
        return;
      case 'stop':
        await router?.close();
        process.exit(0);
    }
  };

  process.on('message', (m: ToWorker) => {
    chain = chain.then(() => handle(m));
  });
  process.once('disconnect', () => process.exit(0));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => undefined);
  send({ type: 'hello' });
  return new Promise<never>(() => undefined);
}

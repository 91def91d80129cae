/**
 * The house rules (DESIGN.md) as code, checked by `npm run lint` (run by `npm test`):
 * the release engine decides and imports no driver; an instance (serve) knows nothing of releases, routers or
 * the control plane; concrete traffic drivers are named only inside src/traffic and by the composition root;
 * no import cycles.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle makes load order matter and the parts impossible to test alone.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'release-is-pure',
      severity: 'error',
      comment: 'The release engine decides; drivers act. It must not import I/O: drivers, instances, the control plane.',
      from: { path: '^src/release/' },
      to: { path: '^src/(traffic|stack|control|controller|serve|metric-sources|store|cli|app)/' },
    },
    {
      name: 'serve-knows-no-release',
      severity: 'error',
      comment: 'An instance serves one bundle; it knows nothing of releases, routers or the control plane.',
      from: { path: '^src/serve/' },
      to: { path: '^src/(release|traffic|control|controller|stack|metric-sources|store|cli|app)/' },
    },
    {
      name: 'model-is-a-library',
      severity: 'error',
      comment: 'Bundles, runtimes and the trainer are used by everything and use none of it.',
      from: { path: '^src/model/' },
      to: { path: '^src/(serve|release|traffic|control|controller|stack|metric-sources|store|cli|app)/' },
    },
    {
      name: 'drivers-chosen-in-one-place',
      severity: 'error',
      comment: 'Concrete traffic drivers are picked by the registry; everything else speaks to the TrafficDriver interface.',
      from: { path: '^src/', pathNot: '^src/(traffic|app)/|^src/cli/router' },
      to: { path: '^src/traffic/(nginx-driver|embedded-router|remote-router)\\.ts$' },
    },
    {
      name: 'controller-without-http-framework',
      severity: 'error',
      comment: 'The controller loop is driven through ports; the control API (Fastify) calls it, not the other way round.',
      from: { path: '^src/controller/' },
      to: { path: '^src/(control|cli|stack|app)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};

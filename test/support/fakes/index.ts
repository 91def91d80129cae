/** In-memory fakes of the release controller's ports (src/controller/ports.ts), for tests without sockets. */
export { ManualClock, settle } from './clock.js';
export { FakeDns } from './dns.js';
export { FakeInstances, FakePreview, type Predict } from './instances.js';
export { FakeMetricSource, type WindowAnswer } from './metric-source.js';
export { InMemoryReleaseLog } from './release-log.js';
export { FakeRouter } from './traffic.js';

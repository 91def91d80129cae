/**
 * POST /admin/model loads only from the bundle roots, judged after resolving symlinks, and its refusals tell
 * nothing about what lies outside them: no "exists or not", no file contents.
 */
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { ADMIN_MODEL_ROUTE } from '../../src/serve/routes/admin.js';
import { appOn, BUNDLE_1_0, BUNDLE_1_1, metricsText, sample } from './helpers.js';

const TOKEN = 'roots-token';

describe('POST /admin/model: bundle roots', () => {
  let tmp: string;
  /** The one bundle root of the app under test. */
  let root: string;
  /** A folder outside every root, holding a valid bundle. */
  let outside: string;
  let app: FastifyInstance;

  const load = async (bundle: string) => {
    const res = await app.inject({
      method: 'POST',
      url: ADMIN_MODEL_ROUTE,
      payload: { bundle },
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return {
      status: res.statusCode,
      body: res.json() as { error: string; message: string; details?: { field: string; problem: string }[] },
      text: res.body,
    };
  };

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'bgserve-roots-'));
    root = path.join(tmp, 'root');
    outside = path.join(tmp, 'outside');
    await mkdir(root);
    await cp(BUNDLE_1_1, path.join(root, '1.1.0'), { recursive: true });
    await cp(BUNDLE_1_1, path.join(outside, '1.1.0'), { recursive: true });
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));
  beforeEach(async () => {
    app = await appOn(BUNDLE_1_0, { adminToken: TOKEN, bundleRoots: [root] });
  });
  afterEach(() => app.close());

  it('loads a bundle inside a root', async () => {
    const res = await load(path.join(root, '1.1.0'));
    expect(res.status).toBe(200);
    expect(res.text).toContain('"version":"1.1.0"');
  });

  it('refuses a folder outside the roots with one answer, whether it exists or not (and reads nothing)', async () => {
    const answers = [];
    for (const p of [
      path.join(outside, '1.1.0'),
      path.join(outside, 'no-such-version'),
      '/etc',
      '/no/such/dir',
      path.join(root, '..', 'outside', '1.1.0'),
    ]) {
      const res = await load(p);
      expect(res.status).toBe(422);
      expect(res.body.error).toBe('bundle_refused');
      expect(res.body.message).toMatch(/^refused: .* is outside the bundle roots/);
      expect(res.body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
      answers.push(res.text.replaceAll(JSON.stringify(path.resolve(p)).slice(1, -1), '<path>'));
    }
    expect(new Set(answers).size).toBe(1);
    const text = await metricsText(app);
    expect(sample(text, INSTANCE_METRICS.modelLoads, { outcome: 'refused' })).toBe(5);
    expect(sample(text, INSTANCE_METRICS.modelInfo, { model_version: '1.0.0' })).toBe(1);
  });

  it('refuses a symlink inside a root that leads out of it (the folder, or one of its files)', async () => {
    await symlink(path.join(outside, '1.1.0'), path.join(root, 'escape'));
    const folder = await load(path.join(root, 'escape'));
    expect(folder.status).toBe(422);
    expect(folder.body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
    expect(folder.body.message).not.toContain(outside);

    const partly = path.join(root, 'partly');
    await cp(BUNDLE_1_1, partly, { recursive: true });
    await rm(path.join(partly, 'forest.bin'));
    await symlink(path.join(outside, '1.1.0', 'forest.bin'), path.join(partly, 'forest.bin'));
    const file = await load(partly);
    expect(file.status).toBe(422);
    expect(file.body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
    expect(file.body.message).toMatch(/^refused: file .*forest\.bin is outside the bundle roots/);
  });

  it('refuses a manifest symlinked to /etc/passwd without showing a byte of it', async () => {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const firstLine = passwd.split('\n')[0];
    const dir = path.join(root, 'passwd-link');
    await mkdir(dir);
    await symlink('/etc/passwd', path.join(dir, 'manifest.json'));
    const res = await load(dir);
    expect(res.status).toBe(422);
    expect(res.body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
    expect(res.text).not.toContain(firstLine.slice(0, 8));
  });

  it('says "not a bundle" for a folder inside a root whose manifest is not JSON, without quoting it', async () => {
    const dir = path.join(root, 'not-json');
    await mkdir(dir);
    await writeFile(path.join(dir, 'manifest.json'), 'root:x:0:0:root:/root:/bin/bash\n');
    const res = await load(dir);
    expect(res.status).toBe(422);
    expect(res.body.details).toEqual([{ field: 'bundle', problem: 'manifest_invalid' }]);
    expect(res.body.message).toMatch(/^not a bundle: .*manifest\.json is not valid JSON/);
    expect(res.text).not.toContain('root:x');

    const empty = path.join(root, 'empty');
    await mkdir(empty);
    const missing = await load(empty);
    expect(missing.body.details).toEqual([{ field: 'bundle', problem: 'manifest_missing' }]);
    expect(missing.body.message).toMatch(/^not a bundle: /);
  });

  it('accepts a root reached through a symlink, by either path', async () => {
    const alias = path.join(tmp, 'alias');
    await symlink(root, alias);
    await app.close();
    app = await appOn(BUNDLE_1_0, { adminToken: TOKEN, bundleRoots: [alias] });
    expect((await load(path.join(alias, '1.1.0'))).status).toBe(200);
    expect((await load(path.join(root, '1.1.0'))).status).toBe(200);
    expect((await load(path.join(outside, '1.1.0'))).body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
  });

  it('by default loads from the models folder of the start-up bundle only', async () => {
    await app.close();
    app = await appOn(BUNDLE_1_0, { adminToken: TOKEN });
    expect((await load(BUNDLE_1_1)).status).toBe(200);
    expect((await load(path.join(root, '1.1.0'))).body.details).toEqual([{ field: 'bundle', problem: 'outside_roots' }]);
  });
});

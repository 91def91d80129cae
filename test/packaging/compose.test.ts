/**
 * The original four compose files, validated without a Docker engine: Debian's Compose v1 (docker-compose
 * 1.29) checks and merges every combination, and the merged stack is read back to check the ports users
 * rely on and that every file it mounts or scrapes exists and agrees with the others.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../support/processes.js';
import { PORTS } from '../../src/config/defaults.js';
import {
  FILES,
  commandText,
  composeConfig,
  composeSpecValidator,
  configQuietInOneProcess,
  mergedStack,
  mounts,
  subsets,
  type ComposeService,
  type MergedStack,
} from './compose-files.js';
import { COMPOSE_SERVICES, INSTANCE_PORT, LIVE_DIR, NGINX_PORT, RENDER_PATH, STATE_DIR } from '../../deploy/nginx/compose.js';

function hostPorts(service: ComposeService): Array<[number, number]> {
  return (service.ports ?? []).map((p) => [Number(p.published), p.target]);
}

describe('compose files', () => {
  it('are valid for Compose v1 as the original four-file command uses them', async () => {
    await expect(composeConfig(FILES, true)).resolves.toBe('');
  });

  it('are each, and in every combination, valid for Compose v1', async () => {
    const combos = subsets(FILES);
    expect(combos).toHaveLength(15);
    const results = await configQuietInOneProcess(combos);
    expect(Object.entries(results).filter(([, code]) => code !== 0)).toEqual([]);
    expect(Object.keys(results)).toHaveLength(15);
  });

  it('follow the Compose Specification that Compose v2 reads (its JSON schema)', async () => {
    const validate = composeSpecValidator();
    for (const file of FILES) {
      const ok = validate(parse(await readFile(path.join(ROOT, file), 'utf8')));
      expect(ok, `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // The schema is strict enough to catch what only one version accepts.
    expect(validate({ services: { a: { image: 'x', healthcheck: { start_interval: '1s' } } } })).toBe(false);
    expect(validate({ services: { a: { image: 'x', healthcheck: { interval: 'soon' } } } })).toBe(false);
  });

  it('use nothing only one Compose version accepts (top-level name, healthcheck.start_interval, version)', async () => {
    for (const file of FILES) {
      const doc = parse(await readFile(path.join(ROOT, file), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(doc), file).not.toContain('name');
      expect(Object.keys(doc), file).not.toContain('version');
      expect(JSON.stringify(doc), file).not.toContain('start_interval');
    }
  });

  it("are started by the README's original four-file command, in the same order", async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const compose = readme.slice(readme.indexOf('## Compose'));
    const command = /docker compose ((?:-f \S+\s*(?:\\\n\s*)?)+)up -d/.exec(compose);
    expect(command, 'README.md, Compose: docker compose -f ... up -d').not.toBeNull();
    expect([...command![1].matchAll(/-f (\S+)/g)].map((m) => m[1])).toEqual(FILES);
    for (const port of ['9090', '3000', '80', '8001', '8002', '8090']) expect(compose).toContain(port);
  });

  describe('the four-file stack', async () => {
    const merged = await mergedStack();
    const s = merged.services;

    it('has the original services and ports, plus the controller', () => {
      expect(Object.keys(s).sort()).toEqual(
        ['controller', 'grafana', COMPOSE_SERVICES.blue, COMPOSE_SERVICES.green, 'nginx', 'prometheus'].sort(),
      );
      expect(hostPorts(s.nginx)).toEqual([[80, NGINX_PORT]]);
      expect(hostPorts(s[COMPOSE_SERVICES.blue])).toEqual([[PORTS.blue, INSTANCE_PORT]]);
      expect(hostPorts(s[COMPOSE_SERVICES.green])).toEqual([[PORTS.green, INSTANCE_PORT]]);
      expect(hostPorts(s.prometheus)).toEqual([[PORTS.prometheus, 9090]]);
      expect(hostPorts(s.grafana)).toEqual([[PORTS.grafana, 3000]]);
      expect(hostPorts(s.controller)).toEqual([[PORTS.control, PORTS.control]]);
    });

    it('scales each color (docs/scaling.md): host port ranges from the environment, the controller discovering replicas', async () => {
      const scaled = parse(await composeConfig(FILES, false, { BLUE_HOST_PORT: '8011-8019', GREEN_HOST_PORT: '8021-8029' })) as MergedStack;
      // One binding per color, a range: each container of a scaled service takes a free port of it.
      expect(scaled.services[COMPOSE_SERVICES.blue].ports).toEqual([{ published: '8011-8019', target: INSTANCE_PORT }]);
      expect(scaled.services[COMPOSE_SERVICES.green].ports).toEqual([{ published: '8021-8029', target: INSTANCE_PORT }]);
      expect(commandText(s.controller)).toContain('--discover-replicas');
    });

    it('mounts only files and directories that exist in the repository', () => {
      for (const [name, service] of Object.entries(s)) {
        for (const v of mounts(service).filter((m) => m.bind)) {
          expect(existsSync(v.source), `${name}: ${v.source}`).toBe(true);
          expect(v.source.startsWith(ROOT), `${name}: ${v.source} is inside the repository`).toBe(true);
        }
      }
    });

    it('runs each instance on its color, the default bundle and the port nginx and Prometheus expect', () => {
      for (const color of ['blue', 'green'] as const) {
        const service = s[COMPOSE_SERVICES[color]];
        const command = commandText(service);
        expect(command).toMatch(new RegExp(`bgserve serve .*--color ${color}\\b`));
        expect(command).toContain(`--port ${INSTANCE_PORT}`);
        expect(command).toContain('--bundle models/wine-quality/1.0.0');
        expect(existsSync(path.join(ROOT, 'models/wine-quality/1.0.0'))).toBe(true);
      }
    });

    it('shares one state volume: controller writes, nginx reads the render read-only', () => {
      const mount = (service: ComposeService, target: string) => mounts(service).find((v) => v.target === target);
      for (const instance of [s.controller, s[COMPOSE_SERVICES.blue], s[COMPOSE_SERVICES.green]]) {
        expect(mount(instance, STATE_DIR)).toMatchObject({ bind: false, source: 'bgserve-state', readOnly: false });
      }
      expect(mount(s.nginx, STATE_DIR)).toMatchObject({ bind: false, source: 'bgserve-state', readOnly: true });
      // The live files and the configuration are where the render (deploy/nginx/compose.ts) says, on both sides.
      expect(s.nginx.environment?.BGSERVE_NGINX_RENDERED).toBe(RENDER_PATH);
      const controller = commandText(s.controller);
      expect(controller).toContain(`--nginx-config ${RENDER_PATH}`);
      expect(controller).toContain(`--nginx-live-dir ${LIVE_DIR}`);
      expect(controller).toContain(`--blue-url http://${COMPOSE_SERVICES.blue}:${INSTANCE_PORT}`);
      expect(controller).toContain(`--green-url http://${COMPOSE_SERVICES.green}:${INSTANCE_PORT}`);
      expect(Object.keys(merged.volumes)).toContain('bgserve-state');
      expect(s.nginx.entrypoint?.join(' ')).toContain('bgserve-watch-config.sh');
    });

    it('agrees with the Prometheus and Grafana files it mounts', async () => {
      const prom = parse(await readFile(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
        scrape_configs: Array<{
          static_configs?: Array<{ targets: string[] }>;
          dns_sd_configs?: Array<{ names: string[]; port: number }>;
        }>;
      };
      // The colors by DNS SD (every replica of a scaled service), the controller as a static target.
      const targets = prom.scrape_configs.flatMap((c) => [
        ...(c.static_configs ?? []).flatMap((sc) => sc.targets),
        ...(c.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((n) => `${n}:${sd.port}`)),
      ]);
      expect(targets).toEqual(
        expect.arrayContaining([
          `${COMPOSE_SERVICES.blue}:${INSTANCE_PORT}`,
          `${COMPOSE_SERVICES.green}:${INSTANCE_PORT}`,
          `controller:${PORTS.control}`,
        ]),
      );
      for (const target of targets) expect(Object.keys(s), `scrape target ${target}`).toContain(target.split(':')[0]);

      const provider = parse(await readFile(path.join(ROOT, 'deploy/grafana/provisioning/dashboards/provider.yml'), 'utf8')) as {
        providers: Array<{ options: { path: string } }>;
      };
      const dashboardsPath = provider.providers[0].options.path;
      const dashboardsMount = mounts(s.grafana).find((v) => v.target === dashboardsPath);
      expect(dashboardsMount?.source).toBe(path.join(ROOT, 'deploy/grafana/dashboards'));
    });
  });
});

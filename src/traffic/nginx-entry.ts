/**
 * nginx in the driver registry: for `bgserve controller`, an nginx run elsewhere (its own container) driven
 * through files, with the options that say where; for `bgserve up`, a private nginx the stack manages under
 * <state-dir>/nginx, its master recorded in stack.json and adopted after a crash.
 */
import path from 'node:path';
import { DOCKER_DNS, resolverFor, type NginxPaths } from './nginx-config.js';
import { startNginxDriver } from './nginx-driver.js';
import { parseHostPort, type ManagedProcess, type TrafficDriverEntry } from './registry.js';
import type { Upstream } from './types.js';

/**
 * Where the official nginx image keeps its files, as the nginx process sees them (the controller only writes
 * the configuration and the live files). No access log: router metrics come from the instances there.
 */
export const EXTERNAL_NGINX_PATHS: Omit<NginxPaths, 'liveDir'> = {
  pid: '/var/run/nginx.pid',
  errorLog: '/dev/stderr',
  accessLog: null,
  tempDir: '/var/cache/nginx',
};
export const EXTERNAL_NGINX_LISTEN: Upstream = { host: '0.0.0.0', port: 80 };

/** The values of the options below, by camel-cased name. */
interface ExternalNginxOptions {
  nginxConfig: string;
  nginxLiveDir: string;
  nginxCheckUrl: string;
  nginxListen: Upstream;
  nginxPid: string;
  nginxErrorLog: string;
  nginxTempDir: string;
  nginxTestCommand: string;
  nginxReloadCommand: string;
  nginxResolver: string;
}

const words = (command: string) => command.trim().split(/\s+/);

/** The private nginx `up` runs under <state-dir>/nginx (its prefix): its master, as stack.json records it. */
export const MANAGED_NGINX: ManagedProcess = {
  role: 'nginx',
  name: 'managed nginx',
  what: "the master of this state dir's managed nginx",
  stopSignal: 'SIGQUIT',
  recognise: (commandLine, dir) => commandLine.startsWith('nginx: master process') && commandLine.includes(`-p ${path.resolve(dir)} `),
  pidFile: { path: (dir) => path.join(dir, 'nginx.pid'), why: (dir) => `its prefix is ${dir}` },
};

export const nginxEntry: TrafficDriverEntry = {
  kind: 'nginx',
  about: 'an nginx run elsewhere, driven through files',
  options: [
    { flags: '--nginx-config <file>', description: 'nginx: where to write the configuration the nginx side applies', required: true },
    { flags: '--nginx-live-dir <dir>', description: 'nginx: live weight files, at the same path in the nginx container', required: true },
    { flags: '--nginx-check-url <url>', description: 'nginx: where this process reaches nginx to see a change in effect', required: true },
    {
      flags: '--nginx-listen <host:port>',
      description: 'nginx: address nginx listens on',
      parse: parseHostPort,
      default: EXTERNAL_NGINX_LISTEN,
    },
    { flags: '--nginx-pid <file>', description: 'nginx: its pid file, as nginx sees it', default: EXTERNAL_NGINX_PATHS.pid },
    { flags: '--nginx-error-log <file>', description: 'nginx: its error log, as nginx sees it', default: EXTERNAL_NGINX_PATHS.errorLog },
    {
      flags: '--nginx-temp-dir <dir>',
      description: "nginx: its body and proxy temp files' directory (must exist)",
      default: EXTERNAL_NGINX_PATHS.tempDir,
    },
    {
      flags: '--nginx-test-command <cmd>',
      description: 'nginx: checks a candidate file ({config}); "true" when the nginx side checks',
      default: 'true',
    },
    {
      flags: '--nginx-reload-command <cmd>',
      description: 'nginx: makes nginx load the file; "true" when the nginx side watches it',
      default: 'true',
    },
    {
      flags: '--nginx-resolver <addr>',
      description: `nginx: DNS server it looks instance host names up with on requests, following a recreated container with no reload (default: ${DOCKER_DNS}, Docker's, when --blue-url/--green-url name hosts; "off": resolved once at load)`,
    },
  ],
  start: (ctx) => {
    const o = ctx.options as Partial<ExternalNginxOptions>;
    return startNginxDriver({
      listen: o.nginxListen ?? EXTERNAL_NGINX_LISTEN,
      upstreams: ctx.upstreams,
      // Rendered into the configuration nginx loads: until then (compose's seed), nginx refuses preview requests.
      previewToken: ctx.previewToken,
      initial: ctx.initial,
      checkUrl: o.nginxCheckUrl,
      render: { resolver: resolverFor(ctx.upstreams, o.nginxResolver) },
      mode: {
        kind: 'external',
        configPath: path.resolve(o.nginxConfig!),
        // As the nginx process sees them (its own container), so not resolved against this process's cwd.
        paths: {
          pid: o.nginxPid ?? EXTERNAL_NGINX_PATHS.pid,
          errorLog: o.nginxErrorLog ?? EXTERNAL_NGINX_PATHS.errorLog,
          accessLog: null,
          tempDir: o.nginxTempDir ?? EXTERNAL_NGINX_PATHS.tempDir,
          liveDir: path.resolve(o.nginxLiveDir!),
        },
        testCommand: words(o.nginxTestCommand ?? 'true'),
        reloadCommand: words(o.nginxReloadCommand ?? 'true'),
      },
    });
  },
  local: {
    run: 'in-stack',
    start: (ctx) =>
      startNginxDriver({
        listen: ctx.listen,
        upstreams: ctx.upstreams,
        initial: ctx.initial,
        previewToken: ctx.previewToken,
        mode: { kind: 'managed', prefix: ctx.dir, adopt: ctx.adopt },
      }),
    process: MANAGED_NGINX,
  },
};

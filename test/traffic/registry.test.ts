import { describe, expect, it } from 'vitest';
import { builtInDrivers } from '../../src/traffic/drivers.js';
import { optionKey, parseHostPort } from '../../src/traffic/registry.js';

describe('traffic driver registry', () => {
  it('lists the built-in kinds and refuses an unknown or a second one of a kind', () => {
    const drivers = builtInDrivers();
    expect(drivers.kinds()).toEqual(['embedded', 'nginx']);
    expect(drivers.choices()).toBe('embedded or nginx');
    expect(() => drivers.get('envoy')).toThrow(/no traffic driver of kind envoy: embedded or nginx/);
    expect(() => drivers.register(drivers.get('nginx'))).toThrow(/registered already/);
  });

  it("names a kind's missing required options by their flags, as commander names their values", () => {
    const drivers = builtInDrivers();
    expect(optionKey('--nginx-check-url <url>')).toBe('nginxCheckUrl');
    expect(drivers.missingOptions('nginx', { nginxConfig: '/x' })).toEqual(['--nginx-live-dir', '--nginx-check-url']);
    expect(drivers.missingOptions('embedded', {})).toEqual([]);
  });

  it('knows the process each placement manages, for the stack to find after a crash', () => {
    const [nginx] = builtInDrivers().managedProcesses();
    expect(nginx.role).toBe('nginx');
    expect(nginx.recognise('nginx: master process nginx -p /s/nginx -c /s/nginx/nginx.conf', '/s/nginx')).toBe(true);
    expect(nginx.recognise('nginx: master process nginx -p /other -c /other/nginx.conf', '/s/nginx')).toBe(false);
  });

  it('parses host:port option values', () => {
    expect(parseHostPort('nginx:80')).toEqual({ host: 'nginx', port: 80 });
    expect(() => parseHostPort('nginx')).toThrow('expected host:port');
    expect(() => parseHostPort('nginx:70000')).toThrow('expected host:port');
  });
});

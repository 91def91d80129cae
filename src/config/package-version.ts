import { createRequire } from 'node:module';

/** bgserve's own version; package.json is two levels up from both src/config and dist/config. */
export const PACKAGE_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

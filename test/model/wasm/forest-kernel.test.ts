import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { KERNEL_MODULE, compileForestKernel, kernelModuleText } from '../../../scripts/forest-kernel.js';
import { FOREST_KERNEL_BASE64 } from '../../../src/model/wasm/forest-kernel.wasm.js';

describe('the forest kernel binary', () => {
  it('is what its text compiles to (run `npm run kernel:generate` after editing forest-kernel-wat.ts)', async () => {
    const binary = await compileForestKernel();
    expect(Buffer.from(FOREST_KERNEL_BASE64, 'base64').equals(Buffer.from(binary))).toBe(true);
    expect(await readFile(KERNEL_MODULE, 'utf8')).toBe(kernelModuleText(binary));
  });

  it('is a valid module exporting the three entry points', () => {
    const module = new WebAssembly.Module(Buffer.from(FOREST_KERNEL_BASE64, 'base64'));
    const memory = new WebAssembly.Memory({ initial: 1 });
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    expect(Object.keys(exports).sort()).toEqual(['layout', 'sumRow', 'sumRows']);
  });
});

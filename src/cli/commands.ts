import type { Command } from 'commander';
import { registerTrain } from './train.js';
import { registerEvaluate } from './evaluate.js';
import { registerServe } from './serve.js';
import { registerUp } from './up.js';
import { registerTraffic } from './traffic.js';
import { registerOnnx } from './onnx.js';
import { registerRelease } from './release.js';
import { registerController } from './controller.js';
import { registerJudge } from './judge.js';
import { registerDemo } from './demo.js';

/** One registrar per command module keeps main.ts stable while commands are added. */
export function registerCommands(program: Command): void {
  void program;
  registerTrain(program);
  registerEvaluate(program);
  registerServe(program);
  registerUp(program);
  registerTraffic(program);
  registerOnnx(program);
  registerRelease(program);
  registerController(program);
  registerJudge(program);
  registerDemo(program);
}

import { describe, it, expect } from 'vitest';
import { mirrorConfig, weightsFor } from '../../src/config/traffic-split.js';

describe('the traffic vocabulary shared by releases and routers', () => {
  it('weightsFor puts a share on one color and the rest on the other (all of it by default)', () => {
    expect(weightsFor('green', 25)).toEqual({ blue: 75, green: 25 });
    expect(weightsFor('blue', 0)).toEqual({ blue: 0, green: 100 });
    expect(weightsFor('green')).toEqual({ blue: 0, green: 100 });
    expect(weightsFor('blue')).toEqual({ blue: 100, green: 0 });
  });

  it("mirrorConfig gives a router the release's mirror as it is, and null as the one spelling of off", () => {
    expect(mirrorConfig({ target: 'green', percent: 50 })).toEqual({ target: 'green', percent: 50 });
    const off = mirrorConfig(null);
    expect(off).toEqual({ target: null, percent: 0 });
    off.percent = 7;
    expect(mirrorConfig(null)).toEqual({ target: null, percent: 0 });
  });
});

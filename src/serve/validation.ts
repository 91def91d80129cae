/**
 * Input schemas built from a bundle's manifest, and strict validators compiled from them: no coercion of
 * strings, no silent removal of unknown fields, every error reported, non-finite numbers refused (Ajv's
 * strictNumbers, on by default, fails NaN and ±Infinity; JSON can only produce the latter, from overflow).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { FeatureSpec } from '../model/types.js';
import { ApiError, detailsFromAjv, invalidInput } from './errors.js';

/** The options Fastify's own Ajv gets too (TOOLCHAIN.md: its defaults coerce, strip and stop early). */
export const STRICT_AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, allErrors: true } as const;

const ajv = new Ajv({ ...STRICT_AJV_OPTIONS, strictNumbers: true });

type JsonSchema = Record<string, unknown>;

function round4(x: number): number {
  return Number(x.toPrecision(4));
}

/** One row as a JSON object: exactly the bundle's features, each a finite number. */
export function rowSchema(features: readonly FeatureSpec[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of features) {
    properties[f.name] = {
      type: 'number',
      description: `seen in training: ${round4(f.min)} to ${round4(f.max)}`,
      examples: [round4(f.mean)],
    };
  }
  return {
    type: 'object',
    additionalProperties: false,
    required: features.map((f) => f.name),
    properties,
  };
}

export function batchSchema(features: readonly FeatureSpec[], batchLimit: number): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['instances'],
    properties: {
      instances: {
        type: 'array',
        minItems: 1,
        description: `at most ${batchLimit} rows (more answers 413 batch_too_large)`,
        items: rowSchema(features),
      },
    },
  };
}

/** Validates and converts request bodies for one model: the only way rows reach its runtime. */
export class InputReader {
  readonly names: readonly string[];
  private readonly row: ValidateFunction;
  private readonly batch: ValidateFunction;

  constructor(
    features: readonly FeatureSpec[],
    readonly batchLimit: number,
  ) {
    this.names = features.map((f) => f.name);
    this.row = ajv.compile(rowSchema(features));
    this.batch = ajv.compile(batchSchema(features, batchLimit));
  }

  /** A /predict body -> one row in feature order, or an ApiError listing every problem. */
  readRow(body: unknown): Float64Array {
    if (!this.row(body)) throw invalidInput(detailsFromAjv(this.row.errors ?? []));
    return this.toRows([body as Record<string, number>]);
  }

  /** A /predict/batch body -> rows, row-major in feature order. */
  readBatch(body: unknown): { rows: Float64Array; nRows: number } {
    const instances = (body as { instances?: unknown } | null)?.instances;
    // Checked before validation so an oversized batch costs no per-row work.
    if (Array.isArray(instances) && instances.length > this.batchLimit) {
      throw new ApiError('batch_too_large', `a batch holds at most ${this.batchLimit} rows; this one has ${instances.length}`, [
        { field: 'instances', problem: `has ${instances.length} rows, limit ${this.batchLimit}` },
      ]);
    }
    if (!this.batch(body)) {
      const errors = this.batch.errors ?? [];
      throw invalidInput(detailsFromAjv(errors.slice(0, 1000)), errors.length);
    }
    const list = instances as Record<string, number>[];
    return { rows: this.toRows(list), nRows: list.length };
  }

  /** Objects already validated -> row-major matrix. */
  toRows(objects: readonly Record<string, number>[]): Float64Array {
    const names = this.names;
    const width = names.length;
    const out = new Float64Array(objects.length * width);
    for (let r = 0; r < objects.length; r++) {
      const obj = objects[r];
      const base = r * width;
      for (let c = 0; c < width; c++) out[base + c] = obj[names[c]];
    }
    return out;
  }
}

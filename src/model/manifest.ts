/** Structural validation of manifest.json: every field, its type and the relations between fields. */
import { MANIFEST_SCHEMA_VERSION, type Manifest } from './types.js';

type Obj = Record<string, unknown>;

const SHA256 = /^[0-9a-f]{64}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** A bundle-relative file path that cannot leave the bundle folder. */
export function isSafeRelativePath(p: unknown): p is string {
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** Collects every problem of a candidate manifest; an empty list means it is a valid Manifest. */
export function manifestProblems(m: unknown): string[] {
  const problems: string[] = [];
  const bad = (path: string, what: string) => problems.push(`${path} ${what}`);
  if (!isObj(m)) return ['manifest must be a JSON object'];

  if (m.schemaVersion !== MANIFEST_SCHEMA_VERSION)
    bad('schemaVersion', `must be ${MANIFEST_SCHEMA_VERSION}, got ${JSON.stringify(m.schemaVersion)}`);
  if (typeof m.name !== 'string' || !NAME.test(m.name))
    bad('name', `must be a name of letters, digits, ".", "_" or "-", got ${JSON.stringify(m.name)}`);
  if (typeof m.version !== 'string' || !/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(m.version))
    bad('version', `must be a version string such as "1.0.0", got ${JSON.stringify(m.version)}`);
  if (m.task !== 'regression' && m.task !== 'classification')
    bad('task', `must be "regression" or "classification", got ${JSON.stringify(m.task)}`);
  const classifier = m.task === 'classification';
  if (classifier) {
    const c = m.classes;
    if (!Array.isArray(c) || c.length < 2 || !c.every(isNonEmptyString)) bad('classes', 'must list 2 or more class labels');
    else if (new Set(c).size !== c.length) bad('classes', 'must not repeat a label');
  } else if (m.classes !== undefined) bad('classes', 'belongs to classification bundles only');
  if (!isNonEmptyString(m.format)) bad('format', 'must be a non-empty string');
  if (!isSafeRelativePath(m.modelFile)) bad('modelFile', `must be a relative path inside the bundle, got ${JSON.stringify(m.modelFile)}`);
  if (!isNonEmptyString(m.target)) bad('target', 'must be a non-empty string');
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt)))
    bad('createdAt', `must be an ISO date-time, got ${JSON.stringify(m.createdAt)}`);

  let nFeatures = -1;
  if (!Array.isArray(m.features) || m.features.length === 0) {
    bad('features', 'must be a non-empty array');
  } else {
    nFeatures = m.features.length;
    const seen = new Set<string>();
    m.features.forEach((f: unknown, i) => {
      const at = `features[${i}]`;
      if (!isObj(f)) {
        bad(at, 'must be an object');
        return;
      }
      if (!isNonEmptyString(f.name)) bad(`${at}.name`, 'must be a non-empty string');
      else if (seen.has(f.name)) bad(`${at}.name`, `repeats "${f.name}"`);
      else seen.add(f.name);
      for (const k of ['min', 'max', 'mean', 'std'] as const) if (!isFiniteNum(f[k])) bad(`${at}.${k}`, 'must be a finite number');
      if (isFiniteNum(f.min) && isFiniteNum(f.max) && f.min > f.max) bad(`${at}`, `has min ${f.min} > max ${f.max}`);
      if (isFiniteNum(f.std) && f.std < 0) bad(`${at}.std`, 'must not be negative');
    });
    if (isNonEmptyString(m.target) && seen.has(m.target)) bad('target', `"${m.target}" is also an input feature`);
  }

  const pre = m.preprocessing;
  if (!isObj(pre)) bad('preprocessing', 'must be an object');
  else if (pre.kind === 'standard-scaler') {
    for (const k of ['mean', 'scale'] as const) {
      const arr = pre[k];
      if (!Array.isArray(arr) || !arr.every(isFiniteNum)) bad(`preprocessing.${k}`, 'must be an array of finite numbers');
      else if (nFeatures >= 0 && arr.length !== nFeatures) bad(`preprocessing.${k}`, `has ${arr.length} entries for ${nFeatures} features`);
      else if (k === 'scale' && arr.some((v) => v <= 0)) bad('preprocessing.scale', 'entries must be positive');
    }
  } else if (pre.kind !== 'none') bad('preprocessing.kind', `must be "standard-scaler" or "none", got ${JSON.stringify(pre.kind)}`);

  const tr = m.training;
  if (!isObj(tr)) bad('training', 'must be an object');
  else {
    const d = tr.data;
    if (!isObj(d)) bad('training.data', 'must be an object');
    else {
      if (!isNonEmptyString(d.file)) bad('training.data.file', 'must be a non-empty string');
      if (typeof d.sha256 !== 'string' || !SHA256.test(d.sha256)) bad('training.data.sha256', 'must be 64 lowercase hex digits');
      if (!Number.isInteger(d.rows) || (d.rows as number) < 1) bad('training.data.rows', 'must be a positive integer');
    }
    if (tr.seed !== undefined && !Number.isSafeInteger(tr.seed)) bad('training.seed', 'must be an integer');
    if (tr.params !== undefined && !isObj(tr.params)) bad('training.params', 'must be an object');
    if (tr.split !== undefined) {
      const s = tr.split;
      if (!isObj(s)) bad('training.split', 'must be an object');
      else {
        if (s.testData !== undefined) {
          const t = s.testData;
          if (!isObj(t)) bad('training.split.testData', 'must be an object');
          else {
            if (!isNonEmptyString(t.file)) bad('training.split.testData.file', 'must be a non-empty string');
            if (typeof t.sha256 !== 'string' || !SHA256.test(t.sha256))
              bad('training.split.testData.sha256', 'must be 64 lowercase hex digits');
            if (t.rows !== s.testRows) bad('training.split.testData.rows', `must equal training.split.testRows (${String(s.testRows)})`);
          }
          if (s.test !== 0) bad('training.split.test', 'must be 0 when a separate testData table was scored');
        } else if (!isFiniteNum(s.test) || s.test <= 0 || s.test >= 1) bad('training.split.test', 'must be a share in (0, 1)');
        for (const k of ['trainRows', 'testRows'] as const)
          if (!Number.isInteger(s[k]) || (s[k] as number) < 1) bad(`training.split.${k}`, 'must be a positive integer');
      }
    }
    const mt = tr.metrics;
    if (!isObj(mt)) bad('training.metrics', 'must be an object');
    else {
      for (const k of classifier ? (['accuracy', 'logLoss'] as const) : (['rmse', 'mae', 'r2', 'accuracy'] as const))
        if (!isFiniteNum(mt[k])) bad(`training.metrics.${k}`, 'must be a finite number');
      if (!Number.isInteger(mt.rows) || (mt.rows as number) < 1) bad('training.metrics.rows', 'must be a positive integer');
    }
  }

  if (!isObj(m.files) || Object.keys(m.files).length === 0) bad('files', 'must map each bundle file to its sha256');
  else {
    for (const [p, sha] of Object.entries(m.files)) {
      if (!isSafeRelativePath(p) || p === 'manifest.json')
        bad(`files["${p}"]`, 'is not a relative path of a bundle file (manifest.json excluded)');
      if (typeof sha !== 'string' || !SHA256.test(sha)) bad(`files["${p}"]`, 'must be 64 lowercase hex digits');
    }
    if (isSafeRelativePath(m.modelFile) && !(m.modelFile in m.files)) bad('files', `does not list the model file "${m.modelFile}"`);
    if (m.goldenFile !== undefined && isSafeRelativePath(m.goldenFile) && !(m.goldenFile in m.files))
      bad('files', `does not list the golden file "${m.goldenFile}"`);
  }
  if (m.onnx !== undefined) {
    if (!isObj(m.onnx)) bad('onnx', 'must be an object');
    else for (const k of ['input', 'output'] as const) if (!isNonEmptyString(m.onnx[k])) bad(`onnx.${k}`, 'must be a non-empty string');
  }
  if (m.goldenFile !== undefined && !isSafeRelativePath(m.goldenFile))
    bad('goldenFile', `must be a relative path inside the bundle, got ${JSON.stringify(m.goldenFile)}`);
  return problems;
}

export function isManifest(m: unknown): m is Manifest {
  return manifestProblems(m).length === 0;
}

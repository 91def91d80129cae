/**
 * The native runtime's tree walk as WebAssembly text, written out from the small templates below.
 *
 * Why templates rather than a .wat file with helper functions: V8 does not inline wasm calls here (Node 20),
 * and a call per node step made the kernel slower than the JavaScript it replaces; written out in full, it
 * is about 1.3 times faster (see bench/inference.ts). Why wasm at all: the walk is bound by instructions, and
 * wasm needs none of the typed-array bounds checks and deoptimisation guards JavaScript pays per step.
 *
 * The walk (see compiled-forest.ts for the node word layout): a node is one i32, right-child distance (high
 * bits, signed) | threshold bin + 1 | feature (low bits); the left child is the next node; a leaf is bin
 * field 0 and distance -1, so a step from a leaf stays on it, and its word is negative. Walks step with masks
 * instead of branches, four at a time so the CPU overlaps their loads; a group stops when all four words are
 * negative. Leaf values are added in tree order into an f64, as the trainer does; the caller divides by the
 * tree count. Addresses are byte offsets into the imported memory, laid out by forest-kernel.ts.
 *
 * `npm run kernel:generate` compiles this text (wabt) into forest-kernel.wasm.ts; a test fails when they differ.
 */

/** Walks stepped together. */
const WIDTH = 4;
const lanes = Array.from({ length: WIDTH }, (_, k) => k);

const get = (name: string) => `(local.get $${name})`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const int = (n: number) => `(i32.const ${n})`;
/**
 * The forest's layout lives in globals, set once; each function copies them into locals first, since V8 keeps
 * locals in registers but reloads a mutable global at every use.
 */
const LAYOUT = ['nodes', 'leaf', 'roots', 'depths', 'nTrees', 'fb', 'fm', 'bm', 'ds'] as const;
const layoutLocals = LAYOUT.map((g) => `(local $${g} i32)`).join(' ');
const loadLayout = LAYOUT.map((g) => `(local.set $${g} (global.get $${g}))`).join(' ');
const loadI32 = (base: string, index: string) => `(i32.load ${add(base, `(i32.shl ${index} ${int(2)})`)})`;
const leafValue = (node: string) => `(f64.load ${add(get('leaf'), `(i32.shl ${node} ${int(3)})`)})`;
const root = (tree: string) => loadI32(get('roots'), tree);
const depth = (tree: string) => loadI32(get('depths'), tree);

/** The node after node i (word w) for the binned row at address o: i + 1, plus the right-child distance when (bin field - 1 - bin(x)) >> 31 is -1, i.e. bin(x) > threshold bin. */
function next(i: string, w: string, o: string): string {
  const binField = `(i32.and (i32.shr_u ${get(w)} ${get('fb')}) ${get('bm')})`;
  const rowBin = `(i32.load ${add(get(o), `(i32.shl (i32.and ${get(w)} ${get('fm')}) ${int(2)})`)})`;
  const goesRight = `(i32.shr_s (i32.sub (i32.sub ${binField} ${int(1)}) ${rowBin}) ${int(31)})`;
  return add(add(get(i), int(1)), `(i32.and (i32.shr_s ${get(w)} ${get('ds')}) ${goesRight})`);
}

/** Walks i0..i3 over rows o0..o3 to their leaves, at most d steps (d is consumed). */
function walkLanes(label: string): string {
  const allLeaves = lanes.slice(1).reduce((acc, k) => `(i32.and ${acc} ${get(`w${k}`)})`, get('w0'));
  return `(block $${label}
      (loop $${label}_step
        (br_if $${label} (i32.le_s ${get('d')} ${int(0)}))
        ${lanes.map((k) => set(`w${k}`, loadI32(get('nodes'), get(`i${k}`)))).join('\n        ')}
        (br_if $${label} (i32.lt_s ${allLeaves} ${int(0)}))
        ${lanes.map((k) => set(`i${k}`, next(`i${k}`, `w${k}`, `o${k}`))).join('\n        ')}
        ${set('d', `(i32.sub ${get('d')} ${int(1)})`)}
        (br $${label}_step)))`;
}

/** Walks node i over the row at o to its leaf. */
function walkOne(label: string): string {
  return `(block $${label}
      (loop $${label}_step
        ${set('w0', loadI32(get('nodes'), get('i0')))}
        (br_if $${label} (i32.lt_s ${get('w0')} ${int(0)}))
        ${set('i0', next('i0', 'w0', 'o0'))}
        (br $${label}_step)))`;
}

const laneLocals = lanes.map((k) => `(local $i${k} i32) (local $w${k} i32) (local $o${k} i32)`).join(' ');
const maxOf = (values: string[]) => values.reduce((a, b) => `(select ${a} ${b} (i32.gt_s ${a} ${b}))`);

export function forestKernelWat(): string {
  const tk = (k: number) => add(get('t'), int(k));
  return `(module
  (import "env" "memory" (memory 1))
  (global $nodes (mut i32) ${int(0)})
  (global $leaf (mut i32) ${int(0)})
  (global $roots (mut i32) ${int(0)})
  (global $depths (mut i32) ${int(0)})
  (global $nTrees (mut i32) ${int(0)})
  ;; How a node word decodes: feature bits, feature mask, bin mask, distance shift.
  (global $fb (mut i32) ${int(0)})
  (global $fm (mut i32) ${int(0)})
  (global $bm (mut i32) ${int(0)})
  (global $ds (mut i32) ${int(0)})

  (func (export "layout") (param $nodes i32) (param $leaf i32) (param $roots i32) (param $depths i32) (param $nTrees i32)
    (param $fb i32) (param $fm i32) (param $bm i32) (param $ds i32)
    ${LAYOUT.map((g) => `(global.set $${g} ${get(g)})`).join('\n    ')})

  ;; The sum, in tree order, of every tree's leaf value for the binned row at address o: ${WIDTH} trees at once.
  (func (export "sumRow") (param $o i32) (result f64)
    (local $t i32) (local $d i32) (local $sum f64) ${laneLocals} ${layoutLocals}
    ${loadLayout}
    ${lanes.map((k) => set(`o${k}`, get('o'))).join(' ')}
    (block $groups
      (loop $group
        (br_if $groups (i32.gt_s ${tk(WIDTH)} ${get('nTrees')}))
        ${lanes.map((k) => set(`i${k}`, root(tk(k)))).join('\n        ')}
        ${set('d', maxOf(lanes.map((k) => depth(tk(k)))))}
        ${walkLanes('trees')}
        ${lanes.map((k) => set('sum', `(f64.add ${get('sum')} ${leafValue(get(`i${k}`))})`)).join('\n        ')}
        ${set('t', tk(WIDTH))}
        (br $group)))
    (block $rest
      (loop $tree
        (br_if $rest (i32.ge_s ${get('t')} ${get('nTrees')}))
        ${set('i0', root(get('t')))}
        ${walkOne('tree')}
        ${set('sum', `(f64.add ${get('sum')} ${leafValue(get('i0'))})`)}
        ${set('t', tk(1))}
        (br $tree)))
    ${get('sum')})

  ;; Into the f64s at address out, for nRows binned rows of stride bytes from address bins, each row's sum in
  ;; tree order of every tree's leaf value: tree by tree (one tree stays in cache), ${WIDTH} rows at once.
  (func (export "sumRows") (param $bins i32) (param $stride i32) (param $nRows i32) (param $out i32)
    (local $t i32) (local $r i32) (local $root i32) (local $depth i32) (local $d i32) (local $at i32) ${laneLocals} ${layoutLocals}
    ${loadLayout}
    (memory.fill ${get('out')} ${int(0)} (i32.shl ${get('nRows')} ${int(3)}))
    (block $trees
      (loop $tree
        (br_if $trees (i32.ge_s ${get('t')} ${get('nTrees')}))
        ${set('root', root(get('t')))}
        ${set('depth', depth(get('t')))}
        ${set('r', int(0))}
        (block $groups
          (loop $group
            (br_if $groups (i32.gt_s ${add(get('r'), int(WIDTH))} ${get('nRows')}))
            ${set('o0', add(get('bins'), `(i32.mul ${get('r')} ${get('stride')})`))}
            ${lanes
              .slice(1)
              .map((k) => set(`o${k}`, add(get(`o${k - 1}`), get('stride'))))
              .join('\n            ')}
            ${lanes.map((k) => set(`i${k}`, get('root'))).join(' ')}
            ${set('d', get('depth'))}
            ${walkLanes('rows')}
            ${set('at', add(get('out'), `(i32.shl ${get('r')} ${int(3)})`))}
            ${lanes.map((k) => `(f64.store offset=${8 * k} ${get('at')} (f64.add (f64.load offset=${8 * k} ${get('at')}) ${leafValue(get(`i${k}`))}))`).join('\n            ')}
            ${set('r', add(get('r'), int(WIDTH)))}
            (br $group)))
        (block $rest
          (loop $row
            (br_if $rest (i32.ge_s ${get('r')} ${get('nRows')}))
            ${set('o0', add(get('bins'), `(i32.mul ${get('r')} ${get('stride')})`))}
            ${set('i0', get('root'))}
            ${walkOne('row')}
            ${set('at', add(get('out'), `(i32.shl ${get('r')} ${int(3)})`))}
            (f64.store ${get('at')} (f64.add (f64.load ${get('at')}) ${leafValue(get('i0'))}))
            ${set('r', add(get('r'), int(1)))}
            (br $row)))
        ${set('t', add(get('t'), int(1)))}
        (br $tree))))
)
`;
}

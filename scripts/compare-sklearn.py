#!/usr/bin/python3
"""Scores bgserve's random forest and scikit-learn's on identical train/test splits of any CSV, several seeds.

For each seed, scikit-learn's train_test_split (stratified for classification) cuts the table's rows in two;
both files are written with the table's own lines (so both libraries read the same numbers), `bgserve train
--data <train> --test-data <test>` trains on every training row and scores the test rows, and scikit-learn's
RandomForestRegressor / RandomForestClassifier with the same trees and features per split is fitted on the
same training rows and scored on the same test rows. Prints one line per seed and the mean of each, and the
ratio bgserve / scikit-learn (RMSE: lower is better; accuracy: higher is better).

Needs Debian's python3-sklearn (not a project dependency) and the project's node_modules:

    /usr/bin/python3 scripts/compare-sklearn.py --data data/diabetes/diabetes.csv --target progression
    /usr/bin/python3 scripts/compare-sklearn.py --data data/iris/iris.csv --target species --task classification
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]


def is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def sklearn_max_features(value):
    if value == 'all':
        return 1.0
    if value in ('sqrt', 'log2'):
        return value
    v = float(value)
    return int(v) if v > 1 else v


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True)
    p.add_argument('--target', required=True)
    p.add_argument('--task', choices=['regression', 'classification'], default='regression')
    p.add_argument('--seeds', default='0,1,2,3,4')
    p.add_argument('--trees', type=int, default=100)
    p.add_argument('--max-features', default=None, help="bgserve's form: all, sqrt, log2, a share or a count "
                   '(default: all for regression, sqrt for classification, as scikit-learn)')
    p.add_argument('--test-share', type=float, default=0.2)
    p.add_argument('--json', action='store_true', help='print one JSON object instead of the table')
    args = p.parse_args()
    classify = args.task == 'classification'
    max_features = args.max_features or ('sqrt' if classify else 'all')

    lines = [l for l in Path(args.data).read_text().splitlines() if l.strip()]
    header = [h.strip() for h in lines[0].split(',')]
    cells = [l.split(',') for l in lines[1:]]
    t = header.index(args.target)
    features = [j for j, _ in enumerate(header) if j != t and all(is_number(r[j]) for r in cells)]
    x = np.array([[float(r[j]) for j in features] for r in cells])
    y = np.array([r[t] if classify else float(r[t]) for r in cells])
    feature_arg = ','.join(header[j] for j in features)

    results = []
    with tempfile.TemporaryDirectory(prefix='compare-sklearn-') as tmp:
        for seed in [int(s) for s in args.seeds.split(',')]:
            idx = np.arange(len(cells))
            train, test = train_test_split(idx, test_size=args.test_share, random_state=seed, stratify=y if classify else None)
            for name, rows in (('train', train), ('test', test)):
                Path(tmp, f'{name}.csv').write_text('\n'.join([lines[0]] + [lines[i + 1] for i in rows]) + '\n')
            out = Path(tmp, 'bundle', str(seed))
            started = time.perf_counter()
            run = subprocess.run(
                [
                    'node', '--import', 'tsx', str(ROOT / 'src/cli/main.ts'), 'train',
                    '--data', str(Path(tmp, 'train.csv')), '--test-data', str(Path(tmp, 'test.csv')),
                    '--target', args.target, '--features', feature_arg, '--out', str(out),
                    '--trees', str(args.trees), '--max-features', max_features, '--seed', str(seed),
                    *(['--task', 'classification'] if classify else []),
                ],
                cwd=ROOT, capture_output=True, text=True,
            )
            if run.returncode != 0:
                sys.exit(f'bgserve train failed (seed {seed}): {run.stderr.strip() or run.stdout.strip()}')
            bg_seconds = time.perf_counter() - started
            metrics = json.loads((out / 'manifest.json').read_text())['training']['metrics']
            Model = RandomForestClassifier if classify else RandomForestRegressor
            model = Model(n_estimators=args.trees, max_features=sklearn_max_features(max_features), random_state=seed, n_jobs=1)
            started = time.perf_counter()
            predicted = model.fit(x[train], y[train]).predict(x[test])
            sk_seconds = time.perf_counter() - started
            if classify:
                score = {'bgserve': metrics['accuracy'], 'sklearn': float(np.mean(predicted == y[test]))}
            else:
                score = {'bgserve': metrics['rmse'], 'sklearn': float(np.sqrt(np.mean((predicted - y[test]) ** 2)))}
            results.append({'seed': seed, 'train_rows': len(train), 'test_rows': len(test), **score,
                            'bgserve_cli_s': round(bg_seconds, 2), 'sklearn_fit_s': round(sk_seconds, 2)})

    metric = 'accuracy' if classify else 'rmse'
    mean = {k: float(np.mean([r[k] for r in results])) for k in ('bgserve', 'sklearn')}
    summary = {'data': args.data, 'target': args.target, 'task': args.task, 'metric': metric, 'trees': args.trees,
               'max_features': max_features, 'seeds': results, 'mean': mean, 'ratio': mean['bgserve'] / mean['sklearn']}
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{args.data} -> {args.target} ({args.task}, {metric}), {args.trees} trees, max features {max_features}")
    for r in results:
        print(f"  seed {r['seed']}: bgserve {r['bgserve']:.4f}  sklearn {r['sklearn']:.4f}  "
              f"({r['train_rows']} train / {r['test_rows']} test rows)")
    print(f"  mean:   bgserve {mean['bgserve']:.4f}  sklearn {mean['sklearn']:.4f}  ratio {summary['ratio']:.4f}")


if __name__ == '__main__':
    main()

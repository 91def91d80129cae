#!/usr/bin/env python3
"""Scores scikit-learn's Pipeline(StandardScaler, RandomForestRegressor) on a bundle's exact held-out split.

The bundle's golden.csv holds its held-out rows; the training rows are the data set minus those rows (one
occurrence each: the red-wine data has duplicate rows). Prints scikit-learn's held-out RMSE/MAE next to the
bundle's own, so the quality of bgserve's trainer can be judged against the reference on the same split.

Needs Debian's python3-sklearn (not a project dependency):  /usr/bin/python3 models/wine-quality/compare-sklearn.py
"""
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]


def rows(path):
    with open(path) as f:
        return [tuple(float(v) for v in r) for r in list(csv.reader(f))[1:] if r]


def main(versions):
    for version in versions:
        bundle = ROOT / 'models/wine-quality' / version
        manifest = json.loads((bundle / 'manifest.json').read_text())
        golden = rows(bundle / manifest['goldenFile'])
        left = Counter(golden)
        train = []
        for r in rows(ROOT / manifest['training']['data']['file']):
            if left[r] > 0:
                left[r] -= 1
            else:
                train.append(r)
        tr, te = np.array(train), np.array(golden)
        params = manifest['training']['params']
        same = (params['trees'], 1.0 if params['maxFeatures'] == 'all' else params['maxFeatures'])
        for n_trees, max_features in dict.fromkeys([(100, 1.0), same]):
            model = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=n_trees, max_features=max_features, random_state=0))
            err = model.fit(tr[:, :-1], tr[:, -1]).predict(te[:, :-1]) - te[:, -1]
            print(f"{version}: sklearn {n_trees} trees, max_features={max_features}: "
                  f"rmse {np.sqrt(np.mean(err ** 2)):.4f} mae {np.mean(np.abs(err)):.4f}")
        m = manifest['training']['metrics']
        print(f"{version}: bgserve bundle: rmse {m['rmse']:.4f} mae {m['mae']:.4f} ({len(train)} training rows, {len(golden)} held out)")


if __name__ == '__main__':
    main(sys.argv[1:] or ['1.0.0', '1.1.0'])

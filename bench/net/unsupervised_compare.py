#!/usr/bin/env python3
"""Unsupervised network detectors side by side, on the rows `mamori net features` wrote and under
the protocol of EVALUATION.md ("Network detection"): trained on normal rows only, threshold at
--target-fpr of held-out normal rows, judged on captures never trained on.

Contenders, all on the same rows and the same ln(1 + x) + standardisation mamori applies:
  mamori-NAME      mamori's own detectors and thresholds (`mamori net train --model iforest|ae`
                   on the same captures; test scores from `mamori net score` JSON lines), one
                   per --mamori NAME MODEL SCORES...
  sk-iforest       scikit-learn IsolationForest (100 trees, 256 rows per tree)
  sk-ae            a dense autoencoder (scikit-learn MLPRegressor, 32-8-32, ReLU, Adam), score =
                   mean squared reconstruction error: the Kitsune family's model in one piece
  sk-knn           mean distance to the 5 nearest training rows

The training sample follows `mamori net train --model iforest`: every fourth normal row (counted
over the training captures in order) is held out for the threshold, and every capture contributes the same number of rows
(--max-rows in all) to training and to calibration, drawn with replacement where a capture has
fewer. The calibrated threshold is the score exceeded by --target-fpr of the calibration rows.

Reported per contender: ROC AUC on the test rows, attack rows caught and false alarms at the
calibrated threshold, false alarms per test capture, and the attack rows caught at a fixed
false-positive rate on the test rows (what the ranking alone allows).

usage: unsupervised_compare.py --train CSV... --test CSV... [--mamori NAME MODEL JSONL...]... [--target-fpr 0.01] [--max-rows 5000] [--seed 0] [--json OUT]
"""

import argparse
import csv
import json
import sys

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from sklearn.neural_network import MLPRegressor

# Columns of `mamori net features` that describe a row rather than measure it.
META = {"source", "device", "flow", "host", "start", "end", "packets", "attack_packets", "label",
        "attack"}


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        cols = [c for c in reader.fieldnames if c not in META]
        if "label" not in reader.fieldnames:
            sys.exit(f"{path}: no label column; run `mamori net features` with --labels")
    entity = next(c for c in ("device", "flow", "host") if c in reader.fieldnames)
    x = np.array([[float(r[c]) for c in cols] for r in rows]).reshape(len(rows), len(cols))
    y = np.array([int(r["label"]) for r in rows])
    keys = [(r["source"], r[entity], float(r["start"])) for r in rows]
    return cols, x, y, keys


def read_scores(paths, entity_keys):
    """mamori net score JSON lines, in row order; each must be the row `entity_keys` has there
    (flows of one 5-tuple can start in the same millisecond, so keys alone are not unique)."""
    scores = []
    for path in paths:
        with open(path) as f:
            for line in f:
                o = json.loads(line)
                entity = next(o[k] for k in ("device", "flow", "host") if k in o)
                key = (o["source"], entity, o["start"])
                want = entity_keys[len(scores)] if len(scores) < len(entity_keys) else None
                # CSV starts are printed to the microsecond; JSON carries every digit.
                if want is None or want[:2] != key[:2] or abs(want[2] - key[2]) > 1e-5:
                    sys.exit(f"{path}: score row {len(scores)} is {key}, the features have {want}")
                scores.append(o["score"])
    if len(scores) != len(entity_keys):
        sys.exit(f"mamori scored {len(scores)} rows, the features have {len(entity_keys)}")
    return np.array(scores)


def load(paths):
    cols, xs, ys, keys, caps = None, [], [], [], []
    for i, p in enumerate(paths):
        c, x, y, k = read_rows(p)
        if cols is not None and c != cols:
            sys.exit(f"{p}: columns differ from {paths[0]}")
        cols = c
        xs.append(x)
        ys.append(y)
        keys.extend(k)
        caps.extend([i] * len(y))
    return np.vstack(xs), np.concatenate(ys), keys, np.array(caps)


def logged(x):
    return np.sign(x) * np.log1p(np.abs(x))


def equal_by_capture(idx_by_cap, budget, rng):
    share = max(budget // max(len(idx_by_cap), 1), 1)
    out = []
    for idx in idx_by_cap:
        if len(idx) >= share:
            out.extend(rng.permutation(idx)[:share])
        else:
            out.extend(idx)
            out.extend(rng.choice(idx, share - len(idx)))
    return np.array(out)


def threshold_at(scores, fpr):
    """The smallest score exceeded by at most `fpr` of `scores`."""
    s = np.sort(scores)[::-1]
    k = int(np.floor(fpr * len(s)))
    return s[min(k, len(s) - 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--test", nargs="+", required=True)
    ap.add_argument("--mamori", nargs="+", action="append", default=[],
                    metavar=("NAME MODEL", "SCORES"))
    ap.add_argument("--target-fpr", type=float, default=0.01)
    ap.add_argument("--max-rows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    x_tr, y_tr, keys_tr, cap_tr = load(a.train)
    x_te, y_te, keys_te, cap_te = load(a.test)
    if y_te.sum() == 0:
        sys.exit("the test rows hold no attack row")
    normal = np.flatnonzero(y_tr == 0)
    held_out = np.arange(len(normal)) % 4 == 3
    train_by_cap = [normal[~held_out & (cap_tr[normal] == c)] for c in range(len(a.train))]
    cal_by_cap = [normal[held_out & (cap_tr[normal] == c)] for c in range(len(a.train))]
    train = equal_by_capture([i for i in train_by_cap if len(i)], a.max_rows, rng)
    cal = equal_by_capture([i for i in cal_by_cap if len(i)], a.max_rows, rng)

    z_all = logged(x_tr)
    mu, sd = z_all[train].mean(0), z_all[train].std(0)
    sd[sd == 0] = 1.0
    z_tr, z_te = (z_all - mu) / sd, (logged(x_te) - mu) / sd

    # name -> (threshold, test scores)
    contenders = {}
    for spec in a.mamori:
        if len(spec) < 3:
            sys.exit("--mamori takes NAME MODEL SCORES...")
        with open(spec[1]) as f:
            t = json.load(f)["threshold"]["value"]
        contenders[f"mamori-{spec[0]}"] = (t, read_scores(spec[2:], keys_te))
    calibrated = lambda s_cal, s_te: (threshold_at(s_cal, a.target_fpr), s_te)
    forest = IsolationForest(n_estimators=100, random_state=a.seed).fit(z_tr[train])
    contenders["sk-iforest"] = calibrated(-forest.score_samples(z_tr[cal]),
                                          -forest.score_samples(z_te))
    ae = MLPRegressor(hidden_layer_sizes=(32, 8, 32), max_iter=500, early_stopping=True,
                      random_state=a.seed).fit(z_tr[train], z_tr[train])
    err = lambda z: ((ae.predict(z) - z) ** 2).mean(1)
    contenders["sk-ae"] = calibrated(err(z_tr[cal]), err(z_te))
    nn = NearestNeighbors(n_neighbors=5).fit(z_tr[train])
    dist = lambda z: nn.kneighbors(z)[0].mean(1)
    contenders["sk-knn"] = calibrated(dist(z_tr[cal]), dist(z_te))

    n_att, n_norm = int(y_te.sum()), int((y_te == 0).sum())
    names = [p.split("/")[-1].removesuffix(".csv") for p in a.test]
    print(f"train rows {len(train)} (+{len(cal)} calibration), test rows {len(y_te)} "
          f"({n_att} attack); threshold at {a.target_fpr:.1%} of calibration rows")
    print("| model | ROC AUC | caught | false alarms | false alarms per capture ("
          + " / ".join(names) + ") | caught at 0.5 % / 1 % / 2 % test FPR |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name, (t, s_te) in contenders.items():
        flag = s_te > t
        caught = int((flag & (y_te == 1)).sum())
        fa = int((flag & (y_te == 0)).sum())
        per_cap = [f"{int((flag & (y_te == 0) & (cap_te == c)).sum())}/"
                   f"{int(((y_te == 0) & (cap_te == c)).sum())}" for c in range(len(a.test))]
        neg = np.sort(s_te[y_te == 0])[::-1]
        at = [int(((s_te > neg[int(r * len(neg))]) & (y_te == 1)).sum()) for r in (0.005, 0.01, 0.02)]
        auc = roc_auc_score(y_te, s_te)
        results[name] = {"auc": auc, "caught": caught, "false_alarms": fa, "per_capture": per_cap,
                         "caught_at_fpr": at, "attack_rows": n_att, "normal_rows": n_norm}
        print(f"| {name} | {auc:.4f} | {caught}/{n_att} | {fa}/{n_norm} | {', '.join(per_cap)} | "
              + " / ".join(f"{v}/{n_att}" for v in at) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

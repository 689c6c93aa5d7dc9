"""Reference side of mamori-net's parity tests: scikit-learn on the data Rust hands over.

Usage: python reference.py IN.json OUT.json

IN.json holds {"task": "svc" | "iforest", ...}; see crates/mamori-net/tests/common/parity.rs,
which writes it and reads OUT.json back. Features arrive already standardised by the Rust
StandardScaler so both sides train on bit-identical inputs; the raw training rows come along
so the scaler itself can be compared too.
"""

import json
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def svc(req):
    scaler = StandardScaler().fit(np.asarray(req["x_train_raw"], dtype=np.float64))
    x_train = np.asarray(req["x_train"], dtype=np.float64)
    y_train = np.asarray(req["y_train"], dtype=np.int64)
    x_test = np.asarray(req["x_test"], dtype=np.float64)
    clf = SVC(
        kernel="rbf",
        C=req["c"],
        gamma=req["gamma"],
        tol=req["tol"],
        shrinking=True,
        cache_size=req["cache_mb"],
    )
    start, cpu = time.perf_counter(), time.thread_time()
    clf.fit(x_train, y_train)
    seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - cpu
    start = time.perf_counter()
    decision = clf.decision_function(x_test)
    predict_seconds = time.perf_counter() - start
    return {
        "scaler_mean": scaler.mean_.tolist(),
        "scaler_scale": scaler.scale_.tolist(),
        "decision": decision.tolist(),
        "predict": clf.predict(x_test).astype(int).tolist(),
        "n_support": clf.n_support_.astype(int).tolist(),
        "intercept": float(clf.intercept_[0]),
        "fit_seconds": seconds,
        "fit_cpu_seconds": cpu_seconds,
        "decision_seconds": predict_seconds,
    }


def iforest(req):
    x_train = np.asarray(req["x_train"], dtype=np.float64)
    x_test = np.asarray(req["x_test"], dtype=np.float64)
    forest = IsolationForest(
        n_estimators=req["n_estimators"], max_samples="auto", random_state=req["seed"]
    )
    start = time.perf_counter()
    forest.fit(x_train)
    seconds = time.perf_counter() - start
    # score_samples is the negated paper score; flip it so higher = more anomalous.
    return {"score": (-forest.score_samples(x_test)).tolist(), "fit_seconds": seconds}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    tasks = {"svc": svc, "iforest": iforest}
    out = tasks[req["task"]](req)
    out["versions"] = {"sklearn": sklearn.__version__, "numpy": np.__version__}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""hmmlearn reference for mamori's CategoricalHmm (tests/hmm_parity.rs).

usage: hmm_parity.py IN.json OUT.json

IN:  {"startprob", "transmat", "emissionprob"   -- a model to score with (n, n×n, n×m; nested lists)
      "windows": [[int, ...], ...]               -- sequences, scored one by one and used for fit
      "fit_init": {"startprob", "transmat", "emissionprob"},
      "n_iter": int, "tol": float}
OUT: {"scores": [CategoricalHMM.score(window) per window],
      "fit_history": monitor_.history after fit (log-likelihood of each E-step, i.e. before
                     that iteration's M-step),
      "fit_loglik": monitor_.history[-1],
      "fit_final_score": model.score(X, lengths) under the fitted parameters,
      "fit_params": {"startprob", "transmat", "emissionprob"} after fit}

Both models use implementation="scaling". fit starts from fit_init exactly (init_params=""),
updates start, transition and emission probabilities (params="ste") with flat priors.
"""
import json
import sys

import numpy as np
from hmmlearn.hmm import CategoricalHMM


def model(p, n_features, **kw):
    start = np.asarray(p["startprob"], dtype=float)
    m = CategoricalHMM(
        n_components=len(start),
        n_features=n_features,
        init_params="",
        params="ste",
        implementation="scaling",
        **kw,
    )
    m.startprob_ = start
    m.transmat_ = np.asarray(p["transmat"], dtype=float)
    m.emissionprob_ = np.asarray(p["emissionprob"], dtype=float)
    return m


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    windows = [np.asarray(w, dtype=int).reshape(-1, 1) for w in data["windows"]]
    n_features = len(data["emissionprob"][0])

    scorer = model(data, n_features)
    scores = [float(scorer.score(w)) for w in windows]

    X = np.concatenate(windows)
    lengths = [len(w) for w in windows]
    fitted = model(data["fit_init"], n_features, n_iter=int(data["n_iter"]), tol=float(data["tol"]))
    fitted.fit(X, lengths)
    history = [float(x) for x in fitted.monitor_.history]

    out = {
        "scores": scores,
        "fit_history": history,
        "fit_loglik": history[-1],
        "fit_final_score": float(fitted.score(X, lengths)),
        "fit_params": {
            "startprob": fitted.startprob_.tolist(),
            "transmat": fitted.transmat_.tolist(),
            "emissionprob": fitted.emissionprob_.tolist(),
        },
    }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

"""Summary of bench/net-seeds.sh: one Markdown table row per protocol, row kind and model, with
mean and min-max over the seeds of attack rows caught, false alarms and false-positive rate, and
the false alarms per test capture. Standard library only.

    python3 bench/net/seeds_summary.py OUT_DIR
"""

import json
import os
import sys
from collections import defaultdict

MODELS = ["ensemble+baselines", "ensemble", "single"]


def spread(values, fmt=None):
    """`mean (min–max)`; counts (fmt None) print their mean with one decimal."""
    if not values:
        return "n/a"
    lo, hi, mean = min(values), max(values), sum(values) / len(values)
    if lo == hi:
        return (fmt or "{:,}").format(lo)
    if fmt is None:
        return f"{mean:,.1f} ({lo:,}–{hi:,})"
    return f"{fmt.format(mean)} ({fmt.format(lo)}–{fmt.format(hi)})"


def short(source):
    base = os.path.basename(source)
    if base == "capture.pcap.gz":
        return os.path.basename(os.path.dirname(source))
    return base.removesuffix(".pcap")


def main(out):
    cells = defaultdict(list)
    for protocol in sorted(os.listdir(out)):
        pdir = os.path.join(out, protocol)
        if not os.path.isdir(pdir):
            continue
        for kind in sorted(os.listdir(pdir)):
            kdir = os.path.join(pdir, kind)
            for seed in sorted(os.listdir(kdir)):
                for model in MODELS:
                    path = os.path.join(kdir, seed, f"{model}.eval.json")
                    if os.path.exists(path):
                        with open(path) as f:
                            cells[(protocol, kind, model)].append(json.load(f))
    print("| protocol | rows | model | seeds | attack rows caught | share | false alarms | FPR "
          "| false alarms per test capture | warm-up rows |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = {"device": 0, "interval": 1, "flow": 2}
    for (protocol, kind, model), runs in sorted(
        cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), MODELS.index(kv[0][2]))
    ):
        attack = runs[0]["tp"] + runs[0]["fn"]
        caught = [r["tp"] for r in runs]
        share = [100.0 * r["tp"] / max(1, r["tp"] + r["fn"]) for r in runs]
        fps = [r["fp"] for r in runs]
        fpr = [100.0 * r["false_positive_rate"] for r in runs if r["false_positive_rate"] is not None]
        per = defaultdict(list)
        normal = {}
        for r in runs:
            for s in r["per_source"]:
                per[short(s["source"])].append(s["false_alarms"])
                normal[short(s["source"])] = s["normal_rows"]
        per_text = ", ".join(
            f"{name} {spread(v)}/{normal[name]:,}" for name, v in sorted(per.items())
        )
        warm = [r.get("warmup_rows", 0) for r in runs]
        print(
            f"| {protocol} | {kind} | {model} | {len(runs)} | {spread(caught)} of {attack:,} "
            f"| {spread(share, '{:.1f}')} % | {spread(fps)} | {spread(fpr, '{:.2f}')} % "
            f"| {per_text} | {spread(warm)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Markdown table for bench/net-throughput.sh from OUT/raw.tsv, OUT/machine.txt and the
per-contender logs (OUT/ID.log). Stdlib only.

    report.py OUT_DIR
"""
import csv
import json
import re
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])
machine = {}
for line in (out / "machine.txt").read_text().splitlines():
    k, _, v = line.partition(": ")
    machine[k] = v

runs = {}
order = []
with open(out / "raw.tsv") as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if r["id"] not in runs:
            order.append(r["id"])
            runs[r["id"]] = []
        runs[r["id"]].append(r)


def summary(cid):
    rs = runs[cid]
    wall = statistics.median(float(r["wall_s"]) for r in rs)
    cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in rs)
    rss = statistics.median(int(r["maxrss_kib"]) for r in rs) / 1024
    n = int(rs[0]["packets"])
    return {
        "id": cid, "what": rs[0]["what"], "n": len(rs), "packets": n, "wall": wall, "cpu": cpu,
        "rss": rss, "pps": n / wall if wall > 0 else float("inf"),
        "ppcs": n / cpu if cpu > 0 else float("inf"),
    }


S = {cid: summary(cid) for cid in order}


def output_note(cid):
    """What the tool said it read and wrote (first run's log)."""
    log = out / f"{cid}.log"
    if not log.exists():
        return ""
    text = log.read_text(errors="replace")
    m = re.search(r"mamori: (\d+) packets \((\d+) labelled attack\), (\d+) rows", text)
    if m:
        note = f"{int(m.group(3)):,} rows"
        m2 = re.search(r"mamori: (\d+) of (\d+) rows over the threshold", text)
        if m2:
            note += f", {int(m2.group(1)):,} alerts"
        if int(m.group(1)) != S[cid]["packets"]:
            note += f"; read {int(m.group(1)):,} packets"
        return note
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if "flows" in j:
                return f"{j['flows']:,} flows ({j['packets_in_flows']:,} packets in flows)"
            if j.get("mode") == "kitsune":
                return f"{j['vectors']:,} vectors × {j['features']}" + (f", {j['scored']:,} scored" if "scored" in j else "")
            if j.get("mode") == "parse":
                return f"{j['packets'] - j['undecodable']:,} decoded"
    return ""


def fmt_s(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def slowest(prefix, suffix=""):
    """The slowest (by wall) mamori row with this prefix on the same file as the references."""
    cands = [S[c] for c in S if c.startswith(prefix) and not c.endswith("-all")]
    return min(cands, key=lambda s: s["pps"]) if cands else None


def compare_with(cid):
    if cid.startswith("mamori"):
        return None
    if cid == "nfstream":
        return S.get("mamori-features-flow")
    if cid == "kitsune-iforest":
        return slowest("mamori-score-")
    return slowest("mamori-features-")


print(f"Machine: {machine.get('nproc')} × {machine.get('cpu')}, {machine.get('memory')}, Linux {machine.get('kernel')}. "
      f"Load average (1/5/15 min) at start {machine.get('load_start')}, at end {machine.get('load_end')}.")
print(f"Versions: mamori {machine.get('git_head')}, binary {machine.get('mamori')}, {machine.get('rustc')}; "
      f"{machine.get('tshark')}; "
      f"Python {machine.get('python')}, dpkt {machine.get('dpkt')}, nfstream {machine.get('nfstream')}, "
      f"numpy {machine.get('numpy')}, scikit-learn {machine.get('scikit-learn')}.")
print(f"Capture: {machine.get('capture')}; the tshark/Python rows and the mamori rows without \"(all)\" read "
      f"{machine.get('reference_capture')}.")
print(f"Median of {machine.get('reps')} runs (n = runs; a first run over the slow cap is not repeated). "
      "CPU = user + sys of the process and its children; RSS = peak resident set of the largest process. "
      "Speed-up = mamori's packets/s ÷ the row's, wall and CPU, against the mamori row named, on the same file.")
print(f"Command: `{machine.get('command')}`\n")
print("| contender | computes | packets | n | wall s | CPU s | peak RSS MiB | packets/s | packets/CPU-s | output | mamori speed-up (wall / CPU) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cid in order:
    s = S[cid]
    c = compare_with(cid)
    if c is None:
        sp = "—"
    else:
        sp = f"**{c['pps'] / s['pps']:.0f}×** / {c['ppcs'] / s['ppcs']:.0f}× vs `{c['id']}`"
    name = cid.replace("-all", " (all)")
    print(f"| {name} | {s['what']} | {s['packets']:,} | {s['n']} | {fmt_s(s['wall'])} | {fmt_s(s['cpu'])} | "
          f"{s['rss']:.0f} | {fmt_rate(s['pps'])} | {fmt_rate(s['ppcs'])} | {output_note(cid)} | {sp} |")

target = 1e6
ours = [S[c] for c in order if c.startswith("mamori")]
if ours:
    print()
    met = [s for s in ours if s["ppcs"] >= target]
    print(f"Target ≥ 1 M packets per CPU-second (per core): {len(met)} of {len(ours)} mamori rows meet it "
          f"(lowest: `{min(ours, key=lambda s: s['ppcs'])['id']}` at {fmt_rate(min(s['ppcs'] for s in ours))}, "
          f"highest: `{max(ours, key=lambda s: s['ppcs'])['id']}` at {fmt_rate(max(s['ppcs'] for s in ours))}).")

#!/usr/bin/env python3
"""Numbers for bench/things.sh (standard library only).

  stats.py recovery CYCLES.tsv INTERVAL_S
      CYCLES.tsv: fault rep t0_ns failed_ns recovering_ns healthy_ns restart_s recoverings waits
      -> the part-1 markdown table (median and max per fault, against the targets)
  stats.py mamori BEFORE.json AFTER.json WALL_S CPU_S DEVICE_CPU_S HWM_KIB RSS_KIB THINGS
      two /api/things snapshots -> one markdown row (and a detail line on stderr)
  stats.py nodewot BEFORE.jsonl-line AFTER.jsonl-line WALL_S CPU_S DEVICE_CPU_S HWM_KIB RSS_KIB THINGS
      two SIGUSR2 snapshots of nodewot-poller.js -> one markdown row
"""
import json
import math
import statistics
import sys

# mamori's probe-latency histogram bounds (crates/mamori-wot/src/status.rs); /api/things also
# gives them as `latency.le`, which wins when present
BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]


def fmt_s(v):
    if v is None:
        return "-"
    if v >= 1:
        return f"{v:.2f} s"
    if v >= 0.001:
        return f"{v * 1e3:.2f} ms"
    return f"{v * 1e6:.0f} µs"


def recovery(path, interval):
    rows = {}
    order = []
    for line in open(path):
        f = line.split()
        if len(f) < 9:
            continue
        fault = f[0]
        t0, failed, _recovering, healthy = (int(x) for x in f[2:6])
        restart = float(f[6]) if f[6] != "-" else None
        if fault not in rows:
            rows[fault] = []
            order.append(fault)
        rows[fault].append(((failed - t0) / 1e9, (healthy - failed) / 1e9, restart,
                            f"{f[7]}" + (f" ({f[8]} wait)" if f[8] != "0" else "")))

    def med_max(xs):
        xs = [x for x in xs if x is not None]
        if not xs:
            return "-", "-"
        return f"{statistics.median(xs):.2f}", f"{max(xs):.2f}"

    print("| fault | cycles | detect median s | detect max s | detect median / max (intervals) "
          "| recover median s | recover max s | docker restart median / max s | recovering/cycle "
          "| detect ≤ 2 intervals | healthy ≤ 5 s after decision |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for fault in order:
        r = rows[fault]
        det = [x[0] for x in r]
        rec = [x[1] for x in r]
        rst = [x[2] for x in r]
        dm, dx = med_max(det)
        rm, rx = med_max(rec)
        sm, sx = med_max(rst)
        per_cycle = ", ".join(x[3] for x in r)
        ok_det = sum(d <= 2 * interval for d in det)
        ok_rec = sum(v <= 5.0 for v in rec)
        print(f"| {fault} | {len(r)} | {dm} | {dx} | "
              f"{statistics.median(det) / interval:.2f} / {max(det) / interval:.2f} | {rm} | {rx} "
              f"| {sm} / {sx} | {per_cycle} | {ok_det}/{len(r)} | {ok_rec}/{len(r)} |")


def percentile_buckets(deltas, count, q):
    """The bucket a quantile falls in, from cumulative bucket counts: ("le", upper bound); all
    that 11 buckets know (interpolating within [0, 1 ms] would only report 0.5 ms)."""
    if count <= 0:
        return None
    rank = q * count
    for bound, cum in zip(BOUNDS, deltas):
        if cum >= rank:
            return ("le", bound)
    return math.inf


def row(tool, things, wall, rounds, reads, errors, cpu, dev_cpu, hwm_kib, rss_kib, p50, p99, extra):
    def p(v):
        if v is None:
            return "-"
        if v == math.inf:
            return f"> {fmt_s(BOUNDS[-1])}"
        if isinstance(v, tuple):
            return f"≤ {fmt_s(v[1])}"
        return fmt_s(v)

    cpu_pct = 100 * cpu / wall
    print(f"| {tool} | {things} | {rounds / wall:.0f} | {reads / wall:.0f} | {errors} "
          f"| {cpu_pct:.1f} | {cpu * 1e6 / max(reads, 1):.1f} | {cpu * 1e6 / max(rounds, 1):.1f} "
          f"| {hwm_kib / 1024:.1f} | {rss_kib / 1024:.1f} | {p(p50)} | {p(p99)} "
          f"| {100 * dev_cpu / wall:.1f} | {extra} |")


def mamori(before, after, wall, cpu, dev_cpu, hwm, rss, things):
    global BOUNDS
    a = {t["name"]: t for t in json.load(open(before))}
    b = {t["name"]: t for t in json.load(open(after))}
    served = [t["latency"]["le"] for t in b.values() if (t.get("latency") or {}).get("le")]
    if served:
        BOUNDS = served[0]
    rounds = reads = errors = bad = 0
    buckets = [0] * len(BOUNDS)
    lat_sum = 0.0
    states = {}
    for name, t in b.items():
        states[t.get("state")] = states.get(t.get("state"), 0) + 1
        o = a.get(name, {})
        rounds += t.get("rounds", 0) - o.get("rounds", 0)
        bad += t.get("bad_rounds", 0) - o.get("bad_rounds", 0)
        lt, lo = t.get("latency") or {}, o.get("latency") or {}
        reads += lt.get("count", 0) - lo.get("count", 0)
        lat_sum += lt.get("sum", 0.0) - lo.get("sum", 0.0)
        bt, bo = lt.get("buckets") or [], lo.get("buckets") or []
        for i in range(len(BOUNDS)):
            buckets[i] += (bt[i] if i < len(bt) else 0) - (bo[i] if i < len(bo) else 0)
        errors += sum((t.get("read_errors") or {}).values()) - sum((o.get("read_errors") or {}).values())
    p50 = percentile_buckets(buckets, reads, 0.50)
    p99 = percentile_buckets(buckets, reads, 0.99)
    mean = lat_sum / reads if reads else None
    extra = f"bad rounds {bad}; mean {fmt_s(mean)}; states {states}"
    row("mamori agent (probe + TD schema check)", things, wall, rounds, reads, errors, cpu,
        dev_cpu, hwm, rss, p50, p99, extra)
    cum = ", ".join(f"≤{b}: {100 * c / reads:.1f}%" for b, c in zip(BOUNDS, buckets)) if reads else ""
    print(f"mamori latency buckets (cumulative share of reads): {cum}", file=sys.stderr)


def nodewot(before, after, wall, cpu, dev_cpu, hwm, rss, things):
    a, b = json.loads(before), json.loads(after)
    wall_node = (int(b["t_ns"]) - int(a["t_ns"])) / 1e9 or wall
    rounds = b["rounds"] - a["rounds"]
    reads = b["ok"] + b["errors"] - a["ok"] - a["errors"]
    errors = b["errors"] - a["errors"]
    hist = {int(k): v for k, v in b["hist"].items()}
    for k, v in a["hist"].items():
        hist[int(k)] = hist.get(int(k), 0) - v
    total = sum(hist.values())

    def q(p):
        if not total:
            return None
        acc = 0
        for k in sorted(hist):
            acc += hist[k]
            if acc >= p * total:
                return 1.01 ** k / 1e6
        return None

    kinds = {k: v - a["errors_by_kind"].get(k, 0) for k, v in b["errors_by_kind"].items()}
    kinds = {k: v for k, v in kinds.items() if v}
    extra = (f"skipped rounds {b['skipped'] - a['skipped']}; in flight at end {b['inflight']}; "
             f"JS heap {b['heap_mib']} MiB" + (f"; errors {kinds}" if kinds else ""))
    row("node-wot 0.7.8 poller (readProperty, no validation)", things, wall_node, rounds, reads,
        errors, cpu * wall_node / wall, dev_cpu * wall_node / wall, hwm, rss, q(0.5), q(0.99), extra)


def main():
    cmd = sys.argv[1]
    if cmd == "recovery":
        recovery(sys.argv[2], float(sys.argv[3]))
    elif cmd in ("mamori", "nodewot"):
        before, after = sys.argv[2], sys.argv[3]
        wall, cpu, dev_cpu = (float(x) for x in sys.argv[4:7])
        hwm, rss = (float(x) for x in sys.argv[7:9])
        things = int(sys.argv[9])
        (mamori if cmd == "mamori" else nodewot)(before, after, wall, cpu, dev_cpu, hwm, rss, things)
    elif cmd == "header":
        print("| tool | things | rounds/s | reads/s | read errors | CPU % of a core "
              "| µs CPU / read | µs CPU / thing-round | peak RSS MiB | RSS MiB | p50 | p99 "
              "| device CPU % | notes |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

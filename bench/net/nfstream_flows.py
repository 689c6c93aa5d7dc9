#!/usr/bin/env python3
"""nfstream reference for bench/net-throughput.sh: bidirectional flows with nfstream's
post-mortem statistical features (statistical_analysis=True: packet size and inter-arrival
min/mean/stddev/max per direction, TCP flag counts, ...) from a capture, iterating every flow
in Python. The flow timeouts match mamori's defaults (idle 30 s, active 120 s); nDPI
application detection runs at nfstream's default (first 20 packets of a flow).

Prints one JSON line (flows, packets nfstream counted in flows, meters) on stderr.

    nfstream_flows.py CAPTURE [--n-meters N] [--no-dpi]
"""
import argparse
import json
import sys
import time

from nfstream import NFStreamer, __version__ as nfstream_version


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--n-meters", type=int, default=0, help="nfstream metering processes (0: its default, one per core)")
    ap.add_argument("--idle-timeout", type=int, default=30)
    ap.add_argument("--active-timeout", type=int, default=120)
    ap.add_argument("--no-dpi", action="store_true", help="n_dissections=0 (no nDPI application detection)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    streamer = NFStreamer(
        source=args.capture,
        statistical_analysis=True,
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        n_meters=args.n_meters,
        n_dissections=0 if args.no_dpi else 20,
    )
    flows = packets = 0
    checksum = 0.0
    for f in streamer:
        flows += 1
        packets += f.bidirectional_packets
        checksum += f.bidirectional_mean_ps + f.src2dst_stddev_piat_ms
    json.dump({
        "flows": flows,
        "packets_in_flows": packets,
        "checksum": checksum,
        "n_meters": args.n_meters,
        "dpi": not args.no_dpi,
        "seconds_inside": round(time.perf_counter() - t0, 3),
        "nfstream": nfstream_version,
    }, sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()

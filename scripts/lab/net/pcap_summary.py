#!/usr/bin/env python3
"""Summarises a network-lab capture (pcap or pcap.gz, Ethernet): packet counts per protocol and
per lab service, per labelled attack (packets between ATTACKER and VICTIM, or from ATTACKER
when VICTIM is `*`, inside [FROM, TO]), and any IPv4 address outside the lab subnet (there
should be none). Stdlib only.
    pcap_summary.py CAPTURE [--labels labels.tsv] [--subnet 10.77.0.0/24]
Exit status 1 if a packet has an address outside --subnet, 2 on a malformed file.
"""
import argparse
import gzip
import ipaddress
import struct
import sys
from collections import Counter

SERVICES = [  # (name, proto, port)
    ("mqtt", 6, 1883), ("http", 6, 80), ("mjpeg-stream", 6, 8080), ("telnet", 6, 23),
    ("telnet-2323", 6, 2323), ("dns", 17, 53), ("ntp", 17, 123),
]


def read_pcap(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: shorter than a pcap header")
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        if linktype != 1:
            raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
        off = 24
        while True:
            rec = f.read(16)
            if not rec:
                return
            if len(rec) < 16:
                raise ValueError(f"{path}: truncated record header at byte {off}")
            sec, frac, incl, orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                raise ValueError(f"{path}: truncated record at byte {off}")
            off += 16 + incl
            yield sec + frac / (1e9 if nano else 1e6), orig, data


def parse(data):
    """-> (kind, src, dst, proto, sport, dport, tcpflags)"""
    if len(data) < 14:
        return ("short", None, None, None, None, None, None)
    etype = struct.unpack("!H", data[12:14])[0]
    if etype == 0x0806:
        return ("arp", None, None, None, None, None, None)
    if etype != 0x0800 or len(data) < 34:
        return ("other-l2", None, None, None, None, None, None)
    ihl = (data[14] & 15) * 4
    proto = data[23]
    src = ipaddress.IPv4Address(data[26:30])
    dst = ipaddress.IPv4Address(data[30:34])
    l4 = 14 + ihl
    sport = dport = flags = None
    if proto in (6, 17) and len(data) >= l4 + 4:
        sport, dport = struct.unpack("!HH", data[l4:l4 + 4])
    if proto == 6 and len(data) >= l4 + 14:
        flags = data[l4 + 13]
    kind = {6: "tcp", 17: "udp", 1: "icmp"}.get(proto, "ip-other")
    return (kind, src, dst, proto, sport, dport, flags)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--labels")
    ap.add_argument("--subnet", default="10.77.0.0/24")
    a = ap.parse_args()
    net = ipaddress.IPv4Network(a.subnet)
    labels = []
    if a.labels:
        with open(a.labels, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.startswith("#") or not line.strip():
                    continue
                p = line.rstrip("\n").split("\t")
                if len(p) != 5:
                    sys.exit(f"pcap_summary: {a.labels}:{lineno}: expected 5 tab-separated fields")
                victim = None if p[3] == "*" else ipaddress.IPv4Address(p[3])
                labels.append([float(p[0]), float(p[1]), ipaddress.IPv4Address(p[2]), victim, p[4], 0, 0])
    kinds, services, outside = Counter(), Counter(), Counter()
    total = wire = 0
    first = last = None
    syn_only = Counter()
    try:
        for ts, orig, data in read_pcap(a.capture):
            total += 1
            wire += orig
            first = ts if first is None else first
            last = ts
            kind, src, dst, proto, sport, dport, flags = parse(data)
            kinds[kind] += 1
            if src is None:
                continue
            for ip in (src, dst):
                if ip not in net and not ip.is_multicast and ip != ipaddress.IPv4Address("255.255.255.255"):
                    outside[str(ip)] += 1
            for name, p, port in SERVICES:
                if proto == p and port in (sport, dport):
                    services[name] += 1
            if proto == 6 and flags is not None and flags & 0x12 == 0x02:
                syn_only[str(dst)] += 1
            for lab in labels:
                if lab[0] <= ts <= lab[1]:
                    if lab[3] is None:
                        hit = src == lab[2] or dst == lab[2]
                    else:
                        hit = {src, dst} == {lab[2], lab[3]}
                    if hit:
                        lab[5] += 1
                        lab[6] += 1 if src == lab[2] else 0
    except (OSError, ValueError, EOFError) as e:
        print(f"pcap_summary: {e}", file=sys.stderr)
        return 2
    span = (last - first) if total else 0.0
    print(f"packets\t{total}\nwire_bytes\t{wire}\nseconds\t{span:.1f}")
    print("by_kind\t" + " ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print("by_service\t" + " ".join(f"{n}={services[n]}" for n, _, _ in SERVICES))
    print("tcp_syn_by_dst\t" + " ".join(f"{k}={v}" for k, v in syn_only.most_common(8)))
    for lab in labels:
        victim = "*" if lab[3] is None else str(lab[3])
        print(f"attack\t{lab[4]}\t{lab[2]}->{victim}\t{lab[1] - lab[0]:.1f}s\tpackets={lab[5]}\tfrom_attacker={lab[6]}")
    if outside:
        print("OUTSIDE_SUBNET\t" + " ".join(f"{k}={v}" for k, v in outside.most_common()))
        return 1
    print(f"outside_subnet\t0")
    return 0


if __name__ == "__main__":
    sys.exit(main())

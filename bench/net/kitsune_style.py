#!/usr/bin/env python3
"""Python reference pipelines for bench/net-throughput.sh: packets from a classic pcap file,
headers decoded with dpkt, and then one of

  --mode parse     only the header fields mamori's extractor uses (times, lengths, MACs, IPs,
                   protocol, ports, TCP flags): the lower bound of any dpkt-based Python pipeline;
  --mode kitsune   per-packet damped incremental statistics in the style of Kitsune's feature
                   extractor ("AfterImage", Mirsky et al., NDSS 2018), written here from the
                   paper's description: for every packet, the statistics of five streams are
                   updated with exponential decay 2^(-lambda * dt) for lambda in {5, 3, 1, 0.1, 0.01}:
                     MI      source MAC + IP         packet size      w, mean, std          (3)
                     H       source IP               packet size      w, mean, std          (3)
                     HH      channel src IP->dst IP  packet size      w, mean, std, magnitude,
                                                                      radius, cov, corr     (7)
                     HH_jit  channel src IP->dst IP  inter-arrival    w, mean, std          (3)
                     HpHp    socket src:port->dst:port packet size    w, mean, std, magnitude,
                                                                      radius, cov, corr     (7)
                   = 23 x 5 = 115 features per packet, one vector per packet.
                   --score iforest additionally scores every vector with scikit-learn's
                   IsolationForest (200 trees, 256 samples per tree), fitted on the first
                   --fit-rows vectors (Kitsune's "grace period") and applied to all, in chunks.

Prints one JSON line with the counts and a checksum (so no work can be skipped) on stderr.

    kitsune_style.py CAPTURE [--mode parse|kitsune] [--score none|iforest] [--max-packets N]
"""
import argparse
import json
import math
import struct
import sys
import time

import dpkt

LAMBDAS = (5.0, 3.0, 1.0, 0.1, 0.01)
NL = len(LAMBDAS)
LN2 = math.log(2.0)
NEG_LAMBDA_LN2 = tuple(-lam * LN2 for lam in LAMBDAS)


def read_pcap(path, limit):
    """Yields (timestamp s, wire length, captured bytes) of a classic pcap file (any byte order,
    micro- or nanosecond timestamps). Plain struct reading: dpkt's own reader does not return
    the wire length, which Kitsune uses as the packet size."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise SystemExit(f"{path}: shorter than a pcap header")
        magic = head[:4]
        if magic == b"\xd4\xc3\xb2\xa1":
            endian, div = "<", 1e6
        elif magic == b"\xa1\xb2\xc3\xd4":
            endian, div = ">", 1e6
        elif magic == b"\x4d\x3c\xb2\xa1":
            endian, div = "<", 1e9
        elif magic == b"\xa1\xb2\x3c\x4d":
            endian, div = ">", 1e9
        else:
            raise SystemExit(f"{path}: not a classic pcap file (pcapng is not read here)")
        linktype = struct.unpack(endian + "I", head[20:24])[0] & 0x0FFFFFFF
        if linktype != 1:
            raise SystemExit(f"{path}: link type {linktype}, only Ethernet (1) is read here")
        rec = struct.Struct(endian + "IIII")
        read = f.read
        n = 0
        while limit is None or n < limit:
            h = read(16)
            if len(h) < 16:
                return
            sec, frac, caplen, wirelen = rec.unpack(h)
            buf = read(caplen)
            if len(buf) < caplen:
                return
            n += 1
            yield sec + frac / div, wirelen, buf


IP4, IP6, ARP = dpkt.ip.IP, dpkt.ip6.IP6, dpkt.arp.ARP
TCP, UDP = dpkt.tcp.TCP, dpkt.udp.UDP
Ethernet = dpkt.ethernet.Ethernet


def decode(buf):
    """Header fields of one Ethernet frame: (src MAC, dst MAC, src IP, dst IP, proto, sport,
    dport, tcp flags); IPs are raw bytes (or None), ports 0 when absent."""
    eth = Ethernet(buf)
    l3 = eth.data
    src = dst = None
    proto = sport = dport = flags = 0
    if isinstance(l3, IP4):
        src, dst, proto = l3.src, l3.dst, l3.p
    elif isinstance(l3, IP6):
        src, dst, proto = l3.src, l3.dst, l3.nxt
    elif isinstance(l3, ARP):
        src, dst = l3.spa, l3.tpa
    if src is not None:
        l4 = l3.data
        if isinstance(l4, TCP):
            sport, dport, flags = l4.sport, l4.dport, l4.flags
        elif isinstance(l4, UDP):
            sport, dport = l4.sport, l4.dport
    return eth.src, eth.dst, src, dst, proto, sport, dport, flags


class Stats1D:
    """Damped (w, linear sum, squared sum) for every lambda, one decay clock."""

    __slots__ = ("t", "w", "ls", "ss", "res")

    def __init__(self, t):
        self.t = t
        self.w = [0.0] * NL
        self.ls = [0.0] * NL
        self.ss = [0.0] * NL
        self.res = [0.0] * NL  # last residual x - mean, for the 2D covariance

    def update(self, t, x):
        dt = t - self.t
        if dt < 0.0:
            dt = 0.0
        self.t = t
        w, ls, ss, res = self.w, self.ls, self.ss, self.res
        xx = x * x
        exp = math.exp
        for i in range(NL):
            if dt:
                f = exp(NEG_LAMBDA_LN2[i] * dt)
                w[i] = w[i] * f + 1.0
                ls[i] = ls[i] * f + x
                ss[i] = ss[i] * f + xx
            else:
                w[i] += 1.0
                ls[i] += x
                ss[i] += xx
            res[i] = x - ls[i] / w[i]

    def features(self, out):
        """Appends w, mean, std for every lambda."""
        for i in range(NL):
            w = self.w[i]
            m = self.ls[i] / w
            out.append(w)
            out.append(m)
            out.append(math.sqrt(abs(self.ss[i] / w - m * m)))


class Pair:
    """Damped sum of residual products of the two directions of a channel or socket."""

    __slots__ = ("t", "sr")

    def __init__(self, t):
        self.t = t
        self.sr = [0.0] * NL


def features_2d(pair, a, b, t, out):
    """Updates the pair's residual-product sum with stream a's new residual (b is the other
    direction, possibly None) and appends w, mean, std of a, then magnitude, radius, approximate
    covariance and correlation of (a, b), for every lambda."""
    dt = t - pair.t
    if dt < 0.0:
        dt = 0.0
    pair.t = t
    sr = pair.sr
    exp, sqrt = math.exp, math.sqrt
    for i in range(NL):
        wa = a.w[i]
        ma = a.ls[i] / wa
        va = abs(a.ss[i] / wa - ma * ma)
        if b is not None and b.w[i] > 0.0:
            wb_raw = b.w[i]
            mb = b.ls[i] / wb_raw
            vb = abs(b.ss[i] / wb_raw - mb * mb)
            # b's weight decayed to now (mean and variance are ratios: decay leaves them as they are)
            db = t - b.t
            wb = wb_raw * exp(NEG_LAMBDA_LN2[i] * db) if db > 0.0 else wb_raw
            rb = b.res[i]
        else:
            mb = vb = wb = rb = 0.0
        s = sr[i] * exp(NEG_LAMBDA_LN2[i] * dt) if dt else sr[i]
        s += a.res[i] * rb
        sr[i] = s
        cov = s / (wa + wb)
        den = sqrt(va * vb)
        out.append(wa)
        out.append(ma)
        out.append(sqrt(va))
        out.append(sqrt(ma * ma + mb * mb))
        out.append(sqrt(va * va + vb * vb))
        out.append(cov)
        out.append(cov / den if den > 0.0 else 0.0)


class AfterImageStyle:
    """Per-packet feature vectors (115 values) from damped statistics of five stream kinds."""

    def __init__(self):
        self.mi = {}
        self.h = {}
        self.hh = {}
        self.hh_pair = {}
        self.jit = {}
        self.jit_last = {}
        self.hphp = {}
        self.hphp_pair = {}

    @staticmethod
    def _get(d, key, t):
        s = d.get(key)
        if s is None:
            s = d[key] = Stats1D(t)
        return s

    def vector(self, t, size, smac, sip, dip, proto, sport, dport):
        out = []
        x = float(size)
        get = self._get
        if sip is None:  # not IP or ARP: MACs stand for the hosts
            sip, dip = smac, b""
        # MI: source MAC + IP
        s = get(self.mi, (smac, sip), t)
        s.update(t, x)
        s.features(out)
        # H: source IP
        s = get(self.h, sip, t)
        s.update(t, x)
        s.features(out)
        # HH: channel, both directions kept, covariance between them
        a = get(self.hh, (sip, dip), t)
        a.update(t, x)
        b = self.hh.get((dip, sip))
        pk = (sip, dip) if sip <= dip else (dip, sip)
        p = self.hh_pair.get(pk)
        if p is None:
            p = self.hh_pair[pk] = Pair(t)
        features_2d(p, a, b, t, out)
        # HH_jit: inter-arrival time on the channel
        key = (sip, dip)
        last = self.jit_last.get(key)
        self.jit_last[key] = t
        s = get(self.jit, key, t)
        s.update(t, (t - last) if last is not None else 0.0)
        s.features(out)
        # HpHp: socket (ports 0 when the protocol has none; proto keeps ICMP and others apart)
        ka = (sip, sport, dip, dport, proto)
        kb = (dip, dport, sip, sport, proto)
        a = get(self.hphp, ka, t)
        a.update(t, x)
        b = self.hphp.get(kb)
        pk = ka if ka <= kb else kb
        p = self.hphp_pair.get(pk)
        if p is None:
            p = self.hphp_pair[pk] = Pair(t)
        features_2d(p, a, b, t, out)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--mode", choices=("parse", "kitsune"), default="kitsune")
    ap.add_argument("--score", choices=("none", "iforest"), default="none")
    ap.add_argument("--max-packets", type=int, default=None)
    ap.add_argument("--fit-rows", type=int, default=10_000, help="vectors the forest is fitted on")
    ap.add_argument("--chunk", type=int, default=16_384, help="vectors scored per batch")
    args = ap.parse_args()

    t0 = time.perf_counter()
    packets = undecodable = vectors = 0
    checksum = 0.0
    n_features = 0
    if args.mode == "parse":
        for ts, wirelen, buf in read_pcap(args.capture, args.max_packets):
            packets += 1
            try:
                smac, dmac, sip, dip, proto, sport, dport, flags = decode(buf)
            except (dpkt.UnpackError, struct.error):
                undecodable += 1
                continue
            checksum += wirelen + sport + dport + flags + proto + len(smac)
    else:
        ai = AfterImageStyle()
        forest = None
        pending = []
        scores_sum = 0.0
        scored = 0
        if args.score == "iforest":
            import numpy as np
            from sklearn.ensemble import IsolationForest

        def flush(rows):
            nonlocal forest, scores_sum, scored
            X = np.asarray(rows, dtype=np.float64)
            if forest is None:
                forest = IsolationForest(n_estimators=200, max_samples=256, random_state=1)
                forest.fit(X[: args.fit_rows])
            s = forest.score_samples(X)
            scores_sum += float(s.sum())
            scored += len(s)

        for ts, wirelen, buf in read_pcap(args.capture, args.max_packets):
            packets += 1
            try:
                smac, dmac, sip, dip, proto, sport, dport, flags = decode(buf)
            except (dpkt.UnpackError, struct.error):
                undecodable += 1
                continue
            v = ai.vector(ts, wirelen, smac, sip, dip, proto, sport, dport)
            vectors += 1
            n_features = len(v)
            checksum += v[1] + v[-1]
            if args.score == "iforest":
                pending.append(v)
                if len(pending) >= (args.fit_rows if forest is None else args.chunk):
                    flush(pending)
                    pending = []
        if args.score == "iforest" and pending:
            flush(pending)
    result = {
        "mode": args.mode,
        "score": args.score,
        "packets": packets,
        "undecodable": undecodable,
        "vectors": vectors,
        "features": n_features,
        "checksum": checksum,
        "seconds_inside": round(time.perf_counter() - t0, 3),
        "dpkt": dpkt.__version__,
    }
    if args.mode == "kitsune" and args.score == "iforest":
        result["scored"] = scored
        result["mean_score"] = scores_sum / scored if scored else None
    json.dump(result, sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Minimal SNTP server (RFC 4330 server side) for the network lab's gateway.

Debian's busybox builds ship no `ntpd` applet, so the lab's gw answers NTP with this:
every well-formed client request (mode 3) gets a mode-4 reply, stratum 2, reference "LAB",
origin = the client's transmit timestamp, receive/transmit = the local clock. Anything else
is ignored. Bounded: exits after --max-seconds or --max-replies, whichever comes first.
    ntp_server.py --bind 10.77.0.1 [--port 123] [--max-seconds 3600] [--max-replies 100000]
"""
import argparse
import socket
import struct
import sys
import time

NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01


def ntp_ts(t):
    sec = int(t) + NTP_EPOCH_OFFSET
    frac = int((t - int(t)) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack("!II", sec & 0xFFFFFFFF, frac)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=123)
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--max-replies", type=int, default=100000)
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    end = time.monotonic() + a.max_seconds
    replies = 0
    ref = time.time() - 17.0
    while replies < a.max_replies:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(min(left, 5.0))
        try:
            data, peer = s.recvfrom(1024)
        except socket.timeout:
            continue
        recv = time.time()
        if len(data) < 48:
            continue
        li_vn_mode = data[0]
        version = (li_vn_mode >> 3) & 7
        mode = li_vn_mode & 7
        if mode != 3 or version not in (1, 2, 3, 4):
            continue
        poll = data[2]
        hdr = struct.pack("!BBbb", (0 << 6) | (version << 3) | 4, 2, poll, -20)
        hdr += struct.pack("!II", 0x00000100, 0x00000200)  # root delay, root dispersion
        hdr += b"LAB\x00"
        pkt = hdr + ntp_ts(ref) + data[40:48] + ntp_ts(recv) + ntp_ts(time.time())
        s.sendto(pkt, peer)
        replies += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Builds a big audit log by repeating real ones, rewritten so the result stays a valid log.

usage: make-log.py OUT RECORDS SAMPLE.log [SAMPLE.log...]

Pass k shifts every kernel record's serial by k * (serial span + 1) and its time by k * (time
span + 1 s), so serials keep increasing and events never collide. auditd's own DAEMON_* records
(they carry auditd's serials, not the kernel's) are kept in the first pass only. Output stops at
the first event boundary at or after RECORDS records; the record count is printed.
"""
import re
import sys

STAMP = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, want, samples = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    lines = []
    for s in samples:
        with open(s, "rb") as f:
            lines.extend(l if l.endswith(b"\n") else l + b"\n" for l in f if l.strip())
    kernel = [STAMP.search(l) for l in lines if not l.startswith(b"type=DAEMON_")]
    kernel = [m for m in kernel if m]
    if not kernel:
        print("make-log: no audit records in the samples", file=sys.stderr)
        return 1
    serials = [int(m.group(3)) for m in kernel]
    secs = [int(m.group(1)) for m in kernel]
    ds = max(serials) - min(serials) + 1
    dt = max(secs) - min(secs) + 1
    n = 0
    last = None
    with open(out, "wb") as f:
        k = 0
        while True:
            for l in lines:
                daemon = l.startswith(b"type=DAEMON_")
                if daemon and k > 0:
                    continue
                m = STAMP.search(l)
                if not m:
                    continue
                serial = int(m.group(3)) + (0 if daemon else k * ds)
                if n >= want and serial != last:
                    print(n)
                    return 0
                sec = int(m.group(1)) + (0 if daemon else k * dt)
                stamp = b"msg=audit(%d.%s:%d)" % (sec, m.group(2), serial)
                f.write(l[: m.start()] + stamp + l[m.end():])
                n += 1
                last = serial
            k += 1


if __name__ == "__main__":
    sys.exit(main())

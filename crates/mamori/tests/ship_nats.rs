//! Shipping through NATS JetStream with real processes on loopback: a `nats-server -js` child,
//! `mamori collect --nats` (no TLS intake) and `mamori ship --nats`, a writer appending audit
//! records while they run. The stored chain must equal the source exactly, and a nats-server
//! SIGKILLed mid-stream and restarted on its store must cause no finding: the records it
//! leaves out of chain order in the stream are put back in order by the collector's intake.

mod common;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ship::{self, writer};
use common::things::{free_port, http_get, wait_for_port, Process};
use common::{mamori, TempDir};

/// The nats-server binary: on PATH or /usr/sbin; panics when there is none (these tests must
/// not pass without it).
fn nats_server_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server is not on PATH nor in /usr/sbin: these tests need the real server \
                 (scripts/lab/setup-nats.sh, or apt-get install nats-server)"
            )
        })
}

struct Lab {
    dir: TempDir,
    nats_port: u16,
    http: u16,
}

impl Lab {
    fn new(name: &str) -> Lab {
        Lab {
            dir: TempDir::new(name),
            nats_port: free_port(),
            http: free_port(),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.nats_port)
    }

    fn store(&self) -> PathBuf {
        self.dir.0.join("store")
    }

    fn device_dir(&self) -> PathBuf {
        self.store().join("gw1")
    }

    fn log(&self) -> PathBuf {
        self.dir.0.join("audit.log")
    }

    fn log_file(&self, name: &str) -> fs::File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join(name))
            .unwrap()
    }

    /// nats-server with JetStream on the lab's port and store directory (the same each time,
    /// so a restart finds its streams).
    fn nats(&self) -> Process {
        let child = Command::new(nats_server_bin())
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.nats_port.to_string())
            .arg("-sd")
            .arg(self.dir.0.join("jetstream"))
            .stdout(Stdio::null())
            .stderr(self.log_file("nats.log"))
            .spawn()
            .expect("nats-server starts");
        let p = Process(child);
        wait_for_port(self.nats_port, Duration::from_secs(20));
        p
    }

    fn collector(&self) -> Process {
        let child = mamori()
            .args(["collect", "--nats"])
            .arg(self.url())
            .args(["--listen", "", "--store"])
            .arg(self.store())
            .arg("--http")
            .arg(format!("127.0.0.1:{}", self.http))
            .args(["--rotate-mib", "1"])
            .stdout(Stdio::null())
            .stderr(self.log_file("collector.log"))
            .spawn()
            .expect("collector starts");
        let p = Process(child);
        wait_for_port(self.http, Duration::from_secs(20));
        p
    }

    fn shipper(&self) -> Process {
        let child = mamori()
            .args(["ship", "--nats"])
            .arg(self.url())
            .args(["--name", "gw1", "--spool"])
            .arg(self.dir.0.join("spool"))
            .arg("--audit-log")
            .arg(self.log())
            .args(["--heartbeat", "0s", "--ack-timeout", "5s"])
            .stdout(Stdio::null())
            .stderr(self.log_file("shipper.log"))
            .spawn()
            .expect("shipper starts");
        Process(child)
    }

    fn logs(&self) -> String {
        ship::logs(
            &self.dir.0,
            &["collector.log", "shipper.log", "nats.log"],
            200,
        )
    }

    fn wait_stored(&self, seq: u64, limit: Duration) {
        ship::wait_stored(self.http, "gw1", seq, limit, || self.logs());
    }

    fn assert_same(&self, want: &[u8]) {
        ship::assert_same(&self.device_dir(), want, || self.logs());
    }

    fn assert_no_findings(&self, why: &str) {
        let f = ship::findings(&self.device_dir());
        assert!(f.is_empty(), "{why}: {f:?}\n{}", self.logs());
    }
}

#[test]
#[ignore = "needs nats-server (scripts/lab/setup-nats.sh; .ci/run installs it)"]
fn a_clean_run_through_jetstream_stores_exactly_the_source() {
    let lab = Lab::new("ship-nats-clean");
    let _nats = lab.nats();
    let _collector = lab.collector();
    fs::write(lab.log(), "").unwrap();
    let _shipper = lab.shipper();
    let written = writer(lab.log(), 20_000, 8_000, Duration::from_secs(2))
        .join()
        .unwrap();
    lab.wait_stored(20_000, Duration::from_secs(180));
    lab.assert_same(&written);
    lab.assert_no_findings("a clean run is no finding");
    let metrics = http_get(lab.http, "/metrics").unwrap().1;
    assert!(
        metrics.contains("mamori_collect_records_total{device=\"gw1\",kind=\"audit\"} 20000"),
        "{metrics}"
    );
    let devices = ship::devices(lab.http);
    let gw1 = devices.iter().find(|d| d["device"] == "gw1");
    assert!(
        gw1.is_some_and(|d| d["last_seq"] == 20_000),
        "/api/devices: {devices:?}"
    );
}

#[test]
#[ignore = "needs nats-server (scripts/lab/setup-nats.sh; .ci/run installs it)"]
fn nats_server_killed_mid_stream_loses_nothing_and_raises_no_finding() {
    let lab = Lab::new("ship-nats-kill");
    let mut nats = lab.nats();
    let _collector = lab.collector();
    fs::write(lab.log(), "").unwrap();
    let _shipper = lab.shipper();
    let w = writer(lab.log(), 20_000, 10_000, Duration::from_secs(4));
    std::thread::sleep(Duration::from_millis(1500));
    nats.0.kill().unwrap(); // SIGKILL, mid pipelined window
    nats.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let _nats = lab.nats();
    let written = w.join().unwrap();
    lab.wait_stored(20_000, Duration::from_secs(150));
    lab.assert_same(&written);
    lab.assert_no_findings("a nats-server crash is no finding");
}

#[test]
#[ignore = "needs nats-server (scripts/lab/setup-nats.sh; .ci/run installs it)"]
fn the_collector_killed_mid_stream_resumes_from_its_durable_consumer() {
    let lab = Lab::new("ship-nats-kill-collector");
    let _nats = lab.nats();
    let mut collector = lab.collector();
    fs::write(lab.log(), "").unwrap();
    let _shipper = lab.shipper();
    let w = writer(lab.log(), 20_000, 10_000, Duration::from_secs(4));
    std::thread::sleep(Duration::from_millis(1500));
    collector.0.kill().unwrap(); // SIGKILL: stored but not yet acknowledged records come again
    collector.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let _collector = lab.collector();
    let written = w.join().unwrap();
    lab.wait_stored(20_000, Duration::from_secs(120));
    lab.assert_same(&written);
    lab.assert_no_findings("a redelivery after a collector restart is no finding");
}

//! Recovery end to end on a real Docker engine: device containers (the FROM-scratch image of
//! crates/mamori-wot-device, scripts/lab/build-device-image.sh) serve their own Thing
//! Descriptions; the agent finds them by their `mamori.thing` label (one through its config),
//! and each is switched into a fault while it runs. Every fault must be detected, the container
//! restarted after its evidence is collected, and the Thing seen healthy again; a device slow
//! just under the timeout and one whose latency flaps around it must not be restarted; a device
//! that fails after every restart must be quarantined by the crash-loop guard.
//!
//! Needs dockerd; runs when MAMORI_DOCKER_TESTS=1 (.ci/run starts dockerd and sets it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::things::{actions, free_port, http, named, state, Agent};
use common::{docker, docker_tests_enabled as enabled, repo};
use serde_json::Value;

const IMAGE: &str = "mamori-wot-device";

/// One device container, removed on drop.
struct Device {
    name: String,
    port: u16,
}

impl Device {
    fn run(name: &str, labelled: bool, env_fault: Option<&str>) -> Device {
        let port = free_port();
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
        let listen = format!("MAMORI_DEVICE_LISTEN=127.0.0.1:{port}");
        let title = format!("MAMORI_DEVICE_TITLE={name}");
        let label = format!("mamori.thing=http://127.0.0.1:{port}/.well-known/wot");
        let fault = format!("MAMORI_DEVICE_FAULT={}", env_fault.unwrap_or("none"));
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            &listen,
            "-e",
            &title,
            "-e",
            &fault,
        ];
        if labelled {
            args.extend(["--label", &label]);
        }
        args.push(IMAGE);
        docker(&args);
        Device {
            name: name.to_string(),
            port,
        }
    }

    fn run_many(name: &str, things: usize) -> Device {
        let port = free_port();
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
        let listen = format!("MAMORI_DEVICE_LISTEN=127.0.0.1:{port}");
        let title = format!("MAMORI_DEVICE_TITLE={name}");
        let count = format!("MAMORI_DEVICE_THINGS={things}");
        let label = format!("mamori.thing=http://127.0.0.1:{port}/");
        docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            &listen,
            "-e",
            &title,
            "-e",
            &count,
            "--label",
            &label,
            IMAGE,
        ]);
        Device {
            name: name.to_string(),
            port,
        }
    }

    fn fault(&self, fault: &str) {
        let reply = http(self.port, "POST", "/control/fault", fault);
        assert_eq!(
            reply.map(|r| r.0),
            Some(200),
            "setting {fault} on {}",
            self.name
        );
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

fn incidents_of<'a>(records: &'a [Value], thing: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["record"] == "incident" && r["subject"]["name"] == thing)
        .collect()
}

#[test]
fn faulty_devices_are_restarted_flapping_ones_are_not_and_a_crash_loop_is_quarantined() {
    if !enabled() {
        return;
    }
    let status = Command::new(repo().join("scripts/lab/build-device-image.sh"))
        .arg(IMAGE)
        .status()
        .expect("build-device-image.sh runs");
    assert!(status.success(), "building the device image failed");

    // (container, fault switched on while it runs); restarted ones first
    let faults = [
        ("mt-type", "wrong-type"),
        ("mt-range", "out-of-range"),
        ("mt-member", "missing-member"),
        ("mt-hang", "hang"),
        ("mt-crash", "crash"),
        ("mt-slow-over", "slow:900"),
    ];
    let benign = [("mt-slow-under", "slow:250"), ("mt-flap", "flap:900")];
    let mut devices = Vec::new();
    for (name, _) in faults.iter().chain(&benign) {
        // mt-type is mapped by the config, the others by their label
        devices.push(Device::run(name, *name != "mt-type", None));
    }
    let looping = Device::run("mt-loop", true, Some("wrong-type"));
    // one container running three Things (its label names its directory): they fail together
    // and the container is restarted once
    let multi = Device::run_many("mt-multi", 3);
    let type_port = devices[0].port;

    let agent = Agent::start(
        "things-docker",
        &format!(
            "[things]\ninterval_seconds = 1.0\ntimeout_seconds = 0.5\nrediscover_seconds = 2.0\n\
             [things.recovery]\nmax_restarts = 3\nwindow_seconds = 120.0\nbackoff_initial_seconds = 1.0\n\
             healthy_timeout_seconds = 6.0\n\
             [[things.thing]]\nname = \"mt-type\"\ntd = \"http://127.0.0.1:{type_port}/.well-known/wot\"\ncontainer = \"mt-type\"\n"
        ),
    );
    let multi_things = [
        "mt-multi/mt-multi-0",
        "mt-multi/mt-multi-1",
        "mt-multi/mt-multi-2",
    ];
    let mut all: Vec<&str> = faults.iter().chain(&benign).map(|(n, _)| *n).collect();
    all.extend(multi_things);
    agent.wait_until(Duration::from_secs(40), "every device healthy", |t| {
        all.iter()
            .all(|n| named(t, n).is_some_and(|x| state(x) == "healthy"))
    });
    for (device, (_, fault)) in devices.iter().zip(faults.iter().chain(&benign)) {
        device.fault(fault);
    }
    multi.fault("crash");

    let restarted: Vec<&str> = faults.iter().map(|(n, _)| *n).collect();
    let things = agent.wait_until(
        Duration::from_secs(90),
        "every fault recovered and the loop quarantined",
        |t| {
            restarted.iter().all(|n| {
                named(t, n)
                    .is_some_and(|x| state(x) == "healthy" && x["restarts"].as_u64() >= Some(1))
            }) && named(t, "mt-loop").is_some_and(|x| state(x) == "quarantined")
        },
    );
    // the benign ones were never restarted, never failed
    for (name, _) in benign {
        let t = named(&things, name).unwrap();
        assert_eq!(t["restarts"], 0, "{name} was restarted: {t}");
        let failed = t["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tr| tr["to"] == "failed");
        assert!(!failed, "{name} failed: {t}");
    }
    let flap = named(&things, "mt-flap").unwrap();
    assert!(
        flap["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tr| tr["to"] == "suspect"),
        "the flapping device was at least suspect: {flap}"
    );
    let looped = named(&things, "mt-loop").unwrap();
    assert_eq!(looped["restarts"], 3, "{looped}");
    assert_eq!(looped["quarantines"], 1);

    // every recovery is an incident record, with evidence collected before the restart
    std::thread::sleep(Duration::from_millis(500));
    let records = agent.records();
    for (name, fault) in faults {
        let incidents = incidents_of(&records, name);
        let incident = incidents
            .first()
            .unwrap_or_else(|| panic!("no incident for {name}: {records:?}"));
        assert_eq!(incident["kind"], "recovery");
        assert_eq!(
            actions(incident),
            vec![
                ("collect-evidence".to_string(), "succeeded".to_string()),
                ("restart".to_string(), "succeeded".to_string()),
                ("verify".to_string(), "succeeded".to_string()),
            ],
            "{name}: {incident}"
        );
        let logs = incident["evidence"]["container_logs"].to_string();
        assert!(
            logs.contains(&format!("fault set to {fault}")),
            "{name} logs: {logs}"
        );
        assert_eq!(incident["alerts"][0]["source"], "things");
        assert!(incident["evidence"]["root_cause"].is_object());
        assert!(incident["closed_ns"].as_i64() > incident["opened_ns"].as_i64());
    }
    // the crashed device's state was read before it was restarted
    let crash = incidents_of(&records, "mt-crash")[0];
    let st = &crash["evidence"]["container_state"]["state"];
    assert_eq!(
        (st["Running"].clone(), st["ExitCode"].clone()),
        (Value::Bool(false), Value::from(1)),
        "{crash}"
    );

    let loop_incidents = incidents_of(&records, "mt-loop");
    let last = loop_incidents.last().expect("the loop's incident");
    let acts = actions(last);
    assert_eq!(
        acts.iter()
            .filter(|(a, o)| a == "restart" && o == "succeeded")
            .count(),
        3,
        "{last}"
    );
    assert_eq!(acts.last().map(|(a, _)| a.as_str()), Some("quarantine"));
    assert_eq!(last["severity"], "critical");
    assert!(records.iter().any(|r| r["record"] == "alert"
        && r["severity"] == "critical"
        && r["subject"]["name"] == "mt-loop"));

    let metrics = agent.metrics_with("mamori_thing_quarantines_total{thing=\"mt-loop\"} 1");
    assert!(
        metrics.contains("mamori_thing_restarts_total{thing=\"mt-loop\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mamori_thing_restarts_total{thing=\"mt-hang\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mamori_thing_restarts_total{thing=\"mt-flap\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mamori_incidents_total{kind=\"recovery\"}"),
        "{metrics}"
    );

    // the same fault twice more, each soon after the last recovery (within the healthy
    // timeout of its restart): restarted again at once each time, not mistaken for a restart
    // made for another Thing of the container
    for round in [2, 3] {
        devices[0].fault("wrong-type");
        agent.wait_until(Duration::from_secs(30), "mt-type recovered again", |t| {
            named(t, "mt-type")
                .is_some_and(|x| state(x) == "healthy" && x["restarts"].as_u64() == Some(round))
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let records = agent.records();
    let all_type = incidents_of(&records, "mt-type");
    assert_eq!(all_type.len(), 3, "{all_type:?}");
    for incident in all_type {
        assert_eq!(
            actions(incident),
            vec![
                ("collect-evidence".to_string(), "succeeded".to_string()),
                ("restart".to_string(), "succeeded".to_string()),
                ("verify".to_string(), "succeeded".to_string()),
            ],
            "{incident}"
        );
    }
    drop(looping);
}

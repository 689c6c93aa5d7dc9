//! The WoT Thing monitor against real servients, without Docker: the Eclipse Thingweb node-wot
//! servient serving example Things (scripts/lab/wot/things.js, one with a value its own TD
//! forbids), and the static device simulator (crates/mamori-wot-device) for security schemes,
//! faults and bad input.
//!
//! Runs when MAMORI_WOT_LAB=1 (.ci/run installs node-wot with scripts/lab/setup-wot-lab.sh and
//! sets it).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::things::{
    device, device_binary, free_port, http_get, named, state, wait_for_port, Agent, Process,
};
use common::{mamori, repo, TempDir};
use serde_json::Value;

fn enabled() -> bool {
    if std::env::var_os("MAMORI_WOT_LAB").is_none() {
        eprintln!("skipped: set MAMORI_WOT_LAB=1 after scripts/lab/setup-wot-lab.sh (see .ci/run)");
        return false;
    }
    true
}

/// node-wot on a free port, until its directory answers.
fn servient() -> (Process, u16) {
    let port = free_port();
    let child = Command::new(repo().join("scripts/lab/wot-servient.sh"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node-wot starts");
    let p = Process(child);
    wait_for_port(port, Duration::from_secs(60));
    // the Things are exposed one after another: wait for the last one
    for _ in 0..100 {
        if http_get(port, "/broken-sensor").is_some_and(|(s, _)| s == 200) {
            return (p, port);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("node-wot did not expose broken-sensor");
}

fn probe_json(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = mamori()
        .args(["things", "probe", "--json"])
        .args(args)
        .output()
        .expect("mamori runs");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        rows,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn row<'a>(rows: &'a [Value], thing: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["thing"] == thing)
        .unwrap_or_else(|| panic!("no {thing} in {rows:?}"))
}

fn property<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["properties"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["property"] == name))
        .unwrap_or_else(|| panic!("no property {name} in {row}"))
}

#[test]
fn node_wot_things_are_discovered_and_polled_and_the_broken_one_is_named() {
    if !enabled() {
        return;
    }
    let (_servient, port) = servient();
    let directory = format!("http://127.0.0.1:{port}/");

    // One probe of the servient's directory: every Thing it lists, every readable property.
    let (code, rows, stderr) = probe_json(&["--subscribe", "5", &directory]);
    assert_eq!(code, 1, "broken-sensor does not conform: {stderr}");
    let counter = row(&rows, "counter");
    assert_eq!(counter["conforms"], true, "{counter}");
    let names: Vec<&str> = counter["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["count", "lastChange"]);
    // the observable property and the event arrive over node-wot's long-poll and conform
    let subs = counter["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert!(subs.iter().all(|s| s["ok"] == true), "{subs:?}");
    let lamp = row(&rows, "lamp");
    assert_eq!(lamp["conforms"], true, "{lamp}");
    assert_eq!(lamp["properties"].as_array().unwrap().len(), 4);
    assert_eq!(property(lamp, "color")["outcome"]["value"]["r"], 255);

    let broken = row(&rows, "broken-sensor");
    assert_eq!(broken["conforms"], false);
    assert_eq!(property(broken, "humidity")["outcome"]["status"], "ok");
    let temp = property(broken, "temperature");
    assert_eq!(temp["outcome"]["status"], "nonconforming", "{temp}");
    let v = &temp["outcome"]["violations"][0];
    assert_eq!(v["kind"], "maximum");
    assert_eq!(v["schema_path"], "/properties/temperature/maximum");
    assert_eq!(v["path"], "");

    // The agent watching the same servient: two healthy Things, one failed with its reason.
    let agent = Agent::start(
        "things-nodewot",
        &format!("[things]\ninterval_seconds = 0.5\ndocker_labels = false\n[[things.thing]]\ntd = \"{directory}\"\n"),
    );
    agent.wait_until(
        Duration::from_secs(30),
        "counter and lamp healthy, broken-sensor failed",
        |t| {
            named(t, "counter").is_some_and(|c| state(c) == "healthy")
                && named(t, "lamp").is_some_and(|c| state(c) == "healthy")
                && named(t, "broken-sensor").is_some_and(|c| state(c) == "failed")
        },
    );
    // `mamori things status` reads the same from the running agent
    let out = mamori()
        .args(["things", "status", "--agent"])
        .arg(format!("http://127.0.0.1:{}", agent.port))
        .output()
        .expect("mamori runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .to_string()
    };
    assert!(line("counter ").contains("healthy"), "{table}");
    assert!(line("broken-sensor").contains("failed"), "{table}");
    let broken = agent.thing("broken-sensor").unwrap();
    let reason = broken["reason"].as_str().unwrap();
    assert!(
        reason.contains("temperature") && reason.contains("/properties/temperature/maximum"),
        "{reason}"
    );
    let metrics =
        agent.metrics_with("mamori_thing_state{thing=\"broken-sensor\",state=\"failed\"} 1");
    assert!(
        metrics.contains("mamori_thing_up{thing=\"counter\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "mamori_thing_schema_violations_total{thing=\"broken-sensor\",kind=\"maximum\"}"
    ));
    assert!(
        metrics.contains("mamori_thing_probe_duration_seconds_bucket{thing=\"lamp\",le=\"+Inf\"}")
    );
    // events arrive over long-poll while the agent runs
    agent.wait_until(Duration::from_secs(10), "counter events", |t| {
        named(t, "counter").is_some_and(|c| c["events_received"].as_u64() > Some(0))
    });
    // the failure went through the shared sinks: an alert and a closed incident whose restart
    // was skipped (no container is mapped to a node-wot Thing here)
    std::thread::sleep(Duration::from_millis(500));
    let records = agent.records();
    assert!(records.iter().any(|r| r["record"] == "alert"
        && r["source"] == "things"
        && r["subject"]["name"] == "broken-sensor"));
    let incident = records
        .iter()
        .find(|r| r["record"] == "incident" && r["subject"]["name"] == "broken-sensor")
        .unwrap_or_else(|| panic!("no incident in {records:?}"));
    assert_eq!(incident["actions"][0]["action"], "restart");
    assert_eq!(incident["actions"][0]["outcome"], "skipped");
    assert!(incident["closed_ns"].is_i64());
}

#[test]
fn basic_and_bearer_security_are_sent_and_missing_credentials_are_named() {
    if !enabled() {
        return;
    }
    let bin = device_binary();
    let (bearer_port, basic_port) = (free_port(), free_port());
    let _bearer = device(
        &bin,
        bearer_port,
        &[
            "--security",
            "bearer",
            "--token",
            "s3cret",
            "--title",
            "locked",
        ],
    );
    let _basic = device(
        &bin,
        basic_port,
        &[
            "--security",
            "basic",
            "--user",
            "op",
            "--password",
            "pw",
            "--title",
            "gate",
        ],
    );
    let bearer_td = format!("http://127.0.0.1:{bearer_port}/.well-known/wot");
    let basic_td = format!("http://127.0.0.1:{basic_port}/.well-known/wot");

    let (code, rows, _) = probe_json(&["--bearer-token", "s3cret", &bearer_td]);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(
        row(&rows, "locked")["properties"].as_array().unwrap().len(),
        4
    );
    let (code, rows, _) = probe_json(&[&bearer_td]);
    assert_eq!(code, 1);
    let error = property(row(&rows, "locked"), "counter")["outcome"]["error"].clone();
    assert_eq!(error["error"], "no-credentials", "{error}");
    let (code, rows, _) = probe_json(&["--bearer-token", "wrong", &bearer_td]);
    assert_eq!(code, 1);
    assert_eq!(
        property(row(&rows, "locked"), "counter")["outcome"]["error"]["status"],
        401
    );

    let (code, rows, _) = probe_json(&["--basic-user", "op", "--basic-password", "pw", &basic_td]);
    assert_eq!(code, 0, "{rows:?}");
    let (code, rows, _) = probe_json(&["--basic-user", "op", "--basic-password", "no", &basic_td]);
    assert_eq!(code, 1);
    assert_eq!(
        property(row(&rows, "gate"), "status")["outcome"]["error"]["status"],
        401
    );
}

#[test]
fn bad_input_is_named_and_the_other_things_keep_being_probed() {
    if !enabled() {
        return;
    }
    let bin = device_binary();
    let (good_port, huge_port, dead_port) = (free_port(), free_port(), free_port());
    let _good = device(&bin, good_port, &["--title", "good"]);
    let _huge = device(&bin, huge_port, &["--title", "huge", "--fault", "huge"]);
    let dir = TempDir::new("things-bad-input");
    let not_json = dir.0.join("not-json.td.json");
    std::fs::write(&not_json, "<html>this is not a Thing Description</html>").unwrap();
    let no_forms = dir.0.join("no-forms.td.json");
    std::fs::write(
        &no_forms,
        r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "formless",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
            "properties": {"temperature": {"type": "number"}}}"#,
    )
    .unwrap();
    let things = format!(
        "[things]\ninterval_seconds = 0.5\ntimeout_seconds = 2.0\ndocker_labels = false\n\
         [[things.thing]]\ntd = \"http://127.0.0.1:{good_port}/.well-known/wot\"\n\
         [[things.thing]]\ntd = \"http://127.0.0.1:{huge_port}/.well-known/wot\"\n\
         [[things.thing]]\nname = \"not-json\"\ntd = \"{}\"\n\
         [[things.thing]]\nname = \"no-forms\"\ntd = \"{}\"\n\
         [[things.thing]]\nname = \"unreachable\"\ntd = \"http://127.0.0.1:{dead_port}/.well-known/wot\"\n",
        not_json.display(),
        no_forms.display()
    );
    let agent = Agent::start("things-bad-input-agent", &things);
    let things = agent.wait_until(Duration::from_secs(30), "every bad input reported", |t| {
        named(t, "good").is_some_and(|g| state(g) == "healthy" && g["rounds"].as_u64() >= Some(4))
            && named(t, "huge").is_some_and(|h| state(h) == "failed")
            && named(t, "not-json").is_some_and(|n| state(n) == "invalid")
            && named(t, "no-forms").is_some_and(|n| state(n) == "invalid")
            && named(t, "unreachable").is_some_and(|n| state(n) == "unknown")
    });
    let reason = |name: &str| {
        named(&things, name).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        reason("huge").contains("reply larger than 1048576 bytes"),
        "{}",
        reason("huge")
    );
    assert!(
        reason("not-json").contains("not JSON at line 1, column 1"),
        "{}",
        reason("not-json")
    );
    assert!(
        reason("no-forms").contains("/properties/temperature/forms: missing"),
        "{}",
        reason("no-forms")
    );
    assert!(
        reason("unreachable").contains("connection failed"),
        "{}",
        reason("unreachable")
    );
    // the good Thing is still polled every round, every property
    let before = named(&things, "good").unwrap()["rounds"].as_u64().unwrap();
    let after = agent.wait_until(Duration::from_secs(10), "more rounds of good", |t| {
        named(t, "good").is_some_and(|g| g["rounds"].as_u64() >= Some(before + 3))
    });
    let good = named(&after, "good").unwrap();
    assert_eq!(state(good), "healthy");
    assert_eq!(good["properties"].as_array().unwrap().len(), 4);
    // the huge reply was refused, not read: the agent's memory stays small
    agent.metrics_with("mamori_thing_read_errors_total{thing=\"huge\",error=\"too-large\"}");

    // the CLI names the same problems
    let out = mamori()
        .args(["things", "probe"])
        .arg(&no_forms)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no-forms.td.json: invalid Thing Description: /properties/temperature/forms: missing"
        ),
        "{err}"
    );
}

#[test]
fn things_add_checks_the_td_and_list_shows_it() {
    if !enabled() {
        return;
    }
    let bin = device_binary();
    let port = free_port();
    let _device = device(&bin, port, &["--title", "pump"]);
    let dir = TempDir::new("things-add");
    let config = dir.0.join("agent.toml");
    std::fs::write(&config, "# my gateway\n[alerts]\nstdout = false\n").unwrap();
    let td = format!("http://127.0.0.1:{port}/.well-known/wot");
    let add = |args: &[&str]| {
        mamori()
            .args(["things", "add", "--config"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = add(&[&td, "--container", "pump-1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("# my gateway"),
        "comments are kept: {text}"
    );
    assert!(
        text.contains("[[things.thing]]") && text.contains("container = \"pump-1\""),
        "{text}"
    );
    // the same TD twice, and a TD that does not load, are refused; the file is unchanged
    assert!(!add(&[&td]).status.success());
    let dead = format!("http://127.0.0.1:{}/td", free_port());
    let out = add(&[&dead]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("connection failed"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    let out = mamori()
        .args(["things", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["container"], "pump-1");
    assert_eq!(listed[0]["things"][0]["title"], "pump");
    assert_eq!(listed[0]["things"][0]["properties"], 4);
}

#[test]
fn expectations_beyond_the_td_are_judged() {
    if !enabled() {
        return;
    }
    let bin = device_binary();
    let port = free_port();
    let _device = device(&bin, port, &["--title", "meter"]);
    let td = format!("http://127.0.0.1:{port}/.well-known/wot");
    // the counter ticks every second, the temperature stays near 20, reset exists; the mode
    // never changes and there is no action `calibrate`
    let things = format!(
        "[things]\ninterval_seconds = 0.5\ndocker_labels = false\n\
         [[things.thing]]\nname = \"meets\"\ntd = \"{td}\"\n\
         [[things.thing.expect]]\nproperty = \"counter\"\nchanges_within_seconds = 3.0\n\
         [[things.thing.expect]]\nproperty = \"temperature\"\nrange = [0.0, 40.0]\n\
         [[things.thing.expect]]\naction = \"reset\"\nevery_seconds = 1.0\n\
         [[things.thing]]\nname = \"misses\"\ntd = \"{td}\"\n\
         [[things.thing.expect]]\nproperty = \"mode\"\nchanges_within_seconds = 1.0\n\
         [[things.thing.expect]]\nproperty = \"temperature\"\nrange = [50.0, 60.0]\n\
         [[things.thing.expect]]\naction = \"calibrate\"\n"
    );
    let agent = Agent::start("things-expect", &things);
    let things = agent.wait_until(
        Duration::from_secs(20),
        "meets healthy, misses failed",
        |t| {
            named(t, "meets")
                .is_some_and(|x| state(x) == "healthy" && x["rounds"].as_u64() >= Some(8))
                && named(t, "misses").is_some_and(|x| state(x) == "failed")
        },
    );
    let meets = named(&things, "meets").unwrap();
    assert!(
        meets["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["to"] != "failed"),
        "{meets}"
    );
    let reason = named(&things, "misses").unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    for part in [
        "is outside the expected range [50, 60]",
        "action calibrate: the TD has no action `calibrate`",
    ] {
        assert!(reason.contains(part), "{part} in {reason}");
    }
    // a value frozen longer than allowed shows within a few rounds, as the current problem
    agent.wait_until(Duration::from_secs(10), "the frozen mode named", |t| {
        named(t, "misses").is_some_and(|x| {
            x["problem"]
                .as_str()
                .is_some_and(|p| p.contains("mode: unchanged (\"auto\") for"))
        })
    });
}

//! `mamori things`: probe W3C WoT Things once, add them to the agent's configuration, list the
//! configured ones, and ask a running agent how its Things are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use mamori_wot::client::{Auth, Credentials, HttpClient};
use mamori_wot::probe::{read_all, PropertyOutcome, PropertyResult};
use mamori_wot::schema::validate_at;
use mamori_wot::status::ThingStatus;
use mamori_wot::td::{self, ThingDescription};
use serde_json::{json, Value};

/// The agent configuration `add` and `list` use when none is given.
const DEFAULT_CONFIG: &str = "/etc/mamori/agent.toml";

/// Probe, add, list and query W3C WoT Things.
#[derive(Subcommand, Debug)]
pub enum ThingsCommand {
    /// Load Thing Descriptions, check them, read every readable property once and check each
    /// value against its DataSchema (exit 1 when anything does not conform).
    Probe(ProbeArgs),
    /// Add a Thing to the agent's configuration (its TD is loaded and checked first).
    Add(AddArgs),
    /// List the Things in the agent's configuration and whether their TDs load now.
    List(ListArgs),
    /// Ask a running agent for the state of its Things (its /api/things).
    Status(StatusArgs),
}

/// Credentials and limits shared by the subcommands that fetch TDs.
#[derive(Args, Debug, Clone)]
pub struct FetchArgs {
    /// Seconds a request may take.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// User for Things whose security is `basic`.
    #[arg(long, value_name = "USER", default_value = "")]
    pub basic_user: String,
    /// Password for `basic`.
    #[arg(long, value_name = "PASSWORD", default_value = "")]
    pub basic_password: String,
    /// Token for Things whose security is `bearer`.
    #[arg(long, value_name = "TOKEN", default_value = "")]
    pub bearer_token: String,
    /// Extra CA certificates (PEM) trusted for https Things.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Larger replies are refused.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_reply_bytes: usize,
}

impl FetchArgs {
    fn credentials(&self) -> Credentials {
        Credentials {
            basic_user: self.basic_user.clone(),
            basic_password: self.basic_password.clone(),
            bearer_token: self.bearer_token.clone(),
        }
    }

    fn timeout(&self) -> Result<Duration> {
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!(
                "--timeout must be a positive number of seconds, got {}",
                self.timeout
            );
        }
        Ok(Duration::from_secs_f64(self.timeout))
    }

    fn client(&self) -> Result<HttpClient> {
        Ok(HttpClient::new(
            self.ca_file.as_deref(),
            self.max_reply_bytes,
        )?)
    }
}

/// `mamori things probe`
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// TD sources: a TD's URL or file, a servient's directory URL, `…/.well-known/wot`.
    #[arg(required = true, value_name = "TD")]
    pub sources: Vec<String>,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Also wait up to this many seconds for one value from each observable property and event
    /// (long-poll) and check it.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub subscribe: f64,
    /// One JSON object per Thing instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `mamori things add`
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The TD: a URL or file (or a servient's directory: every Thing it lists).
    #[arg(value_name = "TD")]
    pub td: String,
    /// Name in alerts and metrics (default: the TD's title).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Container restarted when the Thing fails.
    #[arg(long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The agent's configuration file (created if missing).
    #[arg(short, long, value_name = "TOML", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Do not load the TD first (e.g. the device is not running yet).
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// `mamori things list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The agent's configuration file.
    #[arg(short, long, value_name = "TOML", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Do not load the TDs (just print the configuration).
    #[arg(long)]
    pub offline: bool,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// `mamori things status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The agent's HTTP address (its `[http] listen`).
    #[arg(long, default_value = "http://127.0.0.1:9464", value_name = "URL")]
    pub agent: String,
    /// Only this Thing, in full.
    #[arg(value_name = "THING")]
    pub thing: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `things` subcommand; the exit code is 1 when a probe finds nonconformance.
pub fn run(command: ThingsCommand) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        ThingsCommand::Probe(a) => runtime.block_on(probe(a)),
        ThingsCommand::Add(a) => runtime.block_on(add(a)).map(|()| 0),
        ThingsCommand::List(a) => runtime.block_on(list(a)).map(|()| 0),
        ThingsCommand::Status(a) => runtime.block_on(status(a)).map(|()| 0),
    }
}

/// What one Thing's probe found.
struct Probed {
    td: ThingDescription,
    results: Vec<PropertyResult>,
    subscriptions: Vec<Value>,
}

async fn probe(args: ProbeArgs) -> Result<i32> {
    let client = args.fetch.client()?;
    let timeout = args.fetch.timeout()?;
    let credentials = args.fetch.credentials();
    let mut failed = false;
    let mut rows = Vec::new();
    for source in &args.sources {
        for loaded in td::load(source, &client, &credentials, timeout).await {
            let td = match loaded {
                Ok(td) => td,
                Err(e) => {
                    failed = true;
                    if args.json {
                        println!("{}", json!({"td": e.origin(), "error": e.to_string()}));
                    } else {
                        eprintln!("mamori: {e}");
                    }
                    continue;
                }
            };
            let (targets, _) = td.readable_properties();
            let results = read_all(&client, &targets, &credentials, timeout).await;
            let subscriptions = if args.subscribe > 0.0 {
                subscribe_once(&client, &td, &credentials, args.subscribe).await
            } else {
                Vec::new()
            };
            failed |= results.iter().any(|r| !r.is_ok())
                || subscriptions.iter().any(|s| s["ok"] != json!(true));
            rows.push(Probed {
                td,
                results,
                subscriptions,
            });
        }
    }
    if args.json {
        for p in &rows {
            let (_, skipped) = p.td.readable_properties();
            println!(
                "{}",
                json!({
                    "thing": p.td.title(),
                    "td": p.td.origin,
                    "conforms": p.results.iter().all(PropertyResult::is_ok),
                    "properties": p.results,
                    "not_probed": skipped.iter().map(|s| json!({"name": s.name, "reason": s.reason})).collect::<Vec<_>>(),
                    "subscriptions": p.subscriptions,
                })
            );
        }
    } else {
        print_probe_table(&rows);
    }
    Ok(i32::from(failed))
}

fn print_probe_table(rows: &[Probed]) {
    println!(
        "{:<20} {:<16} {:<8} {:>10}  DETAIL",
        "THING", "PROPERTY", "STATUS", "LATENCY"
    );
    for p in rows {
        for r in &p.results {
            let (status, detail) = match &r.outcome {
                PropertyOutcome::Ok { value } => ("ok", short(&value.to_string())),
                PropertyOutcome::Nonconforming { violations, .. } => (
                    "SCHEMA",
                    violations
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                PropertyOutcome::Failed { error } => ("FAILED", error.to_string()),
            };
            println!(
                "{:<20} {:<16} {:<8} {:>8.1}ms  {detail}",
                p.td.title(),
                r.property,
                status,
                r.latency_seconds * 1e3
            );
        }
        let (_, skipped) = p.td.readable_properties();
        for s in skipped {
            println!(
                "{:<20} {:<16} {:<8} {:>10}  {}",
                p.td.title(),
                s.name,
                "skipped",
                "",
                s.reason
            );
        }
        for s in &p.subscriptions {
            println!(
                "{:<20} {:<16} {:<8} {:>10}  {}",
                p.td.title(),
                format!(
                    "{}:{}",
                    s["kind"].as_str().unwrap_or(""),
                    s["name"].as_str().unwrap_or("")
                ),
                if s["ok"] == json!(true) {
                    "ok"
                } else {
                    "EVENT"
                },
                "",
                s["detail"].as_str().unwrap_or("")
            );
        }
    }
}

fn short(text: &str) -> String {
    if text.chars().count() <= 60 {
        text.to_string()
    } else {
        text.chars().take(60).collect::<String>() + "…"
    }
}

/// Waits for one value from each long-poll subscription and checks it.
async fn subscribe_once(
    client: &HttpClient,
    td: &ThingDescription,
    credentials: &Credentials,
    seconds: f64,
) -> Vec<Value> {
    let waits = td
        .subscriptions()
        .into_iter()
        .filter(|s| s.subprotocol == "longpoll")
        .map(|s| async move {
            let reply = client
                .get_json(
                    &s.url,
                    s.auth,
                    credentials,
                    Duration::from_secs_f64(seconds),
                )
                .await;
            let (ok, detail) = match reply {
                Ok(r) => {
                    let v = s
                        .schema
                        .as_ref()
                        .map(|schema| validate_at(&r.value, schema, &s.schema_path))
                        .unwrap_or_default();
                    if v.is_empty() {
                        (true, short(&r.value.to_string()))
                    } else {
                        (
                            false,
                            v.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    }
                }
                Err(e) => (false, e.to_string()),
            };
            json!({"kind": s.kind, "name": s.name, "url": s.url, "ok": ok, "detail": detail})
        });
    futures_util::future::join_all(waits).await
}

async fn add(args: AddArgs) -> Result<()> {
    if !args.no_check {
        let client = args.fetch.client()?;
        let loaded = td::load(
            &args.td,
            &client,
            &args.fetch.credentials(),
            args.fetch.timeout()?,
        )
        .await;
        let mut titles = Vec::new();
        for r in loaded {
            match r {
                Ok(td) => {
                    let (targets, _) = td.readable_properties();
                    if targets.iter().any(|t| t.auth != Auth::None)
                        && args.fetch.basic_user.is_empty()
                        && args.fetch.bearer_token.is_empty()
                    {
                        eprintln!(
                            "mamori: note: {} requires credentials; give --basic-user/--basic-password or --bearer-token",
                            td.title()
                        );
                    }
                    titles.push(format!("{} ({} properties)", td.title(), targets.len()));
                }
                Err(e) => bail!("{e}\n(add --no-check to add it anyway)"),
            }
        }
        eprintln!("mamori: {} loads: {}", args.td, titles.join(", "));
    }
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", args.config.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{}: not TOML", args.config.display()))?;
    let things = doc
        .entry("things")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .with_context(|| format!("{}: `things` is not a table", args.config.display()))?;
    things.set_implicit(true);
    let list = things
        .entry("thing")
        .or_insert(toml_edit::Item::ArrayOfTables(
            toml_edit::ArrayOfTables::new(),
        ))
        .as_array_of_tables_mut()
        .with_context(|| {
            format!(
                "{}: `things.thing` is not an array of tables",
                args.config.display()
            )
        })?;
    if list
        .iter()
        .any(|t| t.get("td").and_then(|v| v.as_str()) == Some(args.td.as_str()))
    {
        bail!("{} already lists {}", args.config.display(), args.td);
    }
    let mut entry = toml_edit::Table::new();
    if let Some(n) = &args.name {
        entry.insert("name", toml_edit::value(n.as_str()));
    }
    entry.insert("td", toml_edit::value(args.td.as_str()));
    if let Some(c) = &args.container {
        entry.insert("container", toml_edit::value(c.as_str()));
    }
    for (key, v) in [
        ("basic_user", &args.fetch.basic_user),
        ("basic_password", &args.fetch.basic_password),
        ("bearer_token", &args.fetch.bearer_token),
    ] {
        if !v.is_empty() {
            entry.insert(key, toml_edit::value(v.as_str()));
        }
    }
    list.push(entry);
    let new_text = doc.to_string();
    // what the agent would load must still load
    let config: mamori_agent::config::AgentConfig =
        toml::from_str(&new_text).with_context(|| {
            format!(
                "{}: the result would not be a valid agent config",
                args.config.display()
            )
        })?;
    config.check()?;
    write_config(&args.config, &new_text)?;
    eprintln!("mamori: added {} to {}", args.td, args.config.display());
    Ok(())
}

/// Writes the config through a temporary file and a rename (a crash leaves the old one); a
/// linked config is replaced at its target, keeping the link.
fn write_config(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    mamori_core::output::write_output(
        path,
        text.as_bytes(),
        mamori_core::output::SymlinkPolicy::Follow,
    )?;
    Ok(())
}

async fn list(args: ListArgs) -> Result<()> {
    let config = mamori_agent::config::AgentConfig::load(&args.config)?;
    let client = args.fetch.client()?;
    let timeout = args.fetch.timeout()?;
    let mut rows = Vec::new();
    for spec in &config.things.thing {
        let mut found = Vec::new();
        if !args.offline {
            for r in td::load(&spec.td, &client, &spec.credentials(), timeout).await {
                found.push(match r {
                    Ok(td) => {
                        let (targets, skipped) = td.readable_properties();
                        json!({"title": td.title(), "td": td.origin, "properties": targets.len(), "not_probed": skipped.len()})
                    }
                    Err(e) => json!({"td": e.origin(), "error": e.to_string()}),
                });
            }
        }
        rows.push(json!({
            "name": spec.name, "td": spec.td, "container": spec.container,
            "expectations": spec.expect.len(), "things": found,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<20} {:<16} {:<44} LOADS", "NAME", "CONTAINER", "TD");
    for r in &rows {
        let loads: Vec<String> = r["things"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| match t.get("error") {
                Some(e) => format!("ERROR {}", e.as_str().unwrap_or("")),
                None => format!(
                    "{} ({} properties)",
                    t["title"].as_str().unwrap_or(""),
                    t["properties"]
                ),
            })
            .collect();
        println!(
            "{:<20} {:<16} {:<44} {}",
            r["name"].as_str().filter(|s| !s.is_empty()).unwrap_or("-"),
            r["container"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("-"),
            r["td"].as_str().unwrap_or(""),
            if args.offline {
                "(not loaded)".to_string()
            } else {
                loads.join(", ")
            }
        );
    }
    if config.things.thing.is_empty() {
        eprintln!(
            "mamori: {} lists no Things (mamori things add TD --config …)",
            args.config.display()
        );
    }
    Ok(())
}

async fn status(args: StatusArgs) -> Result<()> {
    let client = HttpClient::new(None, 64 << 20)?;
    let base = args.agent.trim_end_matches('/');
    let url = format!("{base}/api/things");
    let reply = client
        .get_json(
            &url,
            Auth::None,
            &Credentials::default(),
            Duration::from_secs(5),
        )
        .await
        .with_context(|| {
            format!("asking the agent at {url} (is `mamori agent` running with [http] listen?)")
        })?;
    let things: Vec<ThingStatus> = serde_json::from_value(reply.value)
        .with_context(|| format!("{url}: not the agent's Thing list"))?;
    let things: Vec<ThingStatus> = match &args.thing {
        Some(name) => {
            let one: Vec<ThingStatus> = things.into_iter().filter(|t| &t.name == name).collect();
            if one.is_empty() {
                bail!("the agent has no Thing named {name}");
            }
            one
        }
        None => things,
    };
    if args.json || args.thing.is_some() {
        println!("{}", serde_json::to_string_pretty(&things)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<12} {:<3} {:>8} {:>9} {:<24} REASON",
        "THING", "STATE", "UP", "ROUNDS", "RESTARTS", "SINCE"
    );
    for t in &things {
        println!(
            "{:<24} {:<12} {:<3} {:>8} {:>9} {:<24} {}",
            t.name,
            t.state.map_or("-", |s| s.as_str()),
            if t.up { "yes" } else { "no" },
            t.rounds,
            t.restarts,
            t.since,
            short(&t.reason)
        );
    }
    if things.is_empty() {
        eprintln!("mamori: the agent watches no Things");
    }
    Ok(())
}

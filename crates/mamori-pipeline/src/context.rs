//! Context signals beside the window models: what a container did in training, by name, so a
//! first-time action raises its own alert with its own explanation.
//!
//! - **Programs**: the paths a container executed (`execve`). A program never executed in
//!   training — a shell, `ps`, an editor, a downloaded payload — is what most intrusions do
//!   first, and a window model sees it only through the calls it happens to make.
//! - **Requests**: the first line of what each inbound connection sent to a listening port
//!   (for HTTP the method, the path and the names of the query parameters). A device's API has
//!   a fixed surface; a call of an endpoint never used in training (`/0/detection/pause`) starts
//!   no process, and its system calls look like every other request's.
//! - **Network standard input**: a process whose standard input is a network connection is a
//!   remote shell (`bash 0</dev/tcp/…`, a shell under `nc -e`), the rule Falco calls "redirect
//!   stdin to network connection". Each line it reads is the attacker's next command, so each is
//!   its own alert, and the alert quotes it. A connection to a listening port (a forking server
//!   such as inetd reads its client on descriptor 0) is a request, not a shell. Training learns
//!   which outbound connections, by remote port, fed a standard input normally; lines from
//!   those are not raised.
//!
//! Both are sets learned from training recordings ([`ContextLearner`]) and checked while
//! scoring ([`ContextWatcher`]). Items are kept as text, so an alert says what was new.
//! Requests need the received data (strace `-s`, Falco `evt.buffer`); sources without it give
//! program novelty only. With the device's Thing Description ([`crate::declared`]), a request
//! new to training that the device declares as a read is not raised, and the alert of any other
//! says whether the TD declares it (and as what) or not.

use std::collections::{BTreeSet, HashMap, HashSet};

use mamori_core::alert::Fired;
use mamori_core::{Alert, Evidence, Subject, SyscallEvent};
use serde::{Deserialize, Serialize};

use crate::declared::{declaration, Declaration, DeclaredRequest};

/// How many characters of a request key are kept.
const MAX_KEY_CHARS: usize = 160;
/// Open inbound connections remembered per watcher before the oldest half is forgotten.
const MAX_CONNECTIONS: usize = 65_536;
/// Distinct items a profile keeps per kind: a learner fed something that is not one device's
/// normal operation stops growing instead of exhausting memory.
pub const MAX_ITEMS: usize = 65_536;

/// What kind of first-time action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoveltyKind {
    /// A program executed that never was in training.
    Program,
    /// A request to a listening port unlike every one in training.
    Request,
    /// A line read as standard input from a network connection not seen doing so in training.
    NetworkStdin,
}

impl NoveltyKind {
    /// Short name, as alerts and metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            NoveltyKind::Program => "new-program",
            NoveltyKind::Request => "new-request",
            NoveltyKind::NetworkStdin => "network-stdin",
        }
    }
}

/// What a container did in training.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextProfile {
    /// Executed program paths.
    pub programs: BTreeSet<String>,
    /// Request keys (`PORT METHOD /path?names`, or `PORT text…` for other protocols).
    pub requests: BTreeSet<String>,
    /// Connections that fed a process's standard input in training, by remote port (`->4444`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub network_stdin: BTreeSet<String>,
    /// Whether the training input carried received data at all: without it, request novelty
    /// cannot be judged and is not raised.
    #[serde(default)]
    pub saw_received_data: bool,
    /// The device's HTTP API as its Thing Description declares it (empty: no TD given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared: Vec<DeclaredRequest>,
}

impl ContextProfile {
    fn set(&self, kind: NoveltyKind) -> &BTreeSet<String> {
        match kind {
            NoveltyKind::Program => &self.programs,
            NoveltyKind::Request => &self.requests,
            NoveltyKind::NetworkStdin => &self.network_stdin,
        }
    }
}

/// A first-time action found while scoring.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Novelty {
    /// Which signal.
    pub kind: NoveltyKind,
    /// The program path, the request key, or for network standard input the connection and the
    /// line read (`->18083: exit`).
    pub what: String,
    /// When (ns), if the event had a time.
    pub time_ns: Option<i64>,
    /// Process and thread.
    pub pid: Option<u32>,
    /// See `pid`.
    pub tid: Option<u32>,
    /// For a request, what the device's Thing Description says of it (`action pause`, or
    /// that it is not declared); none without a TD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
}

impl Novelty {
    /// The alert it raises (source `context`, detector the signal's name), as the agent and
    /// `mamori score` write it: `process` is the command name when the source gives one,
    /// `repeats` how often the same item was seen before, `run_start_ns` from the alert rule.
    pub fn alert(
        &self,
        subject: Subject,
        model_path: &str,
        process: Option<&str>,
        repeats: u64,
        run_start_ns: i64,
    ) -> Alert {
        let t = self.time_ns.unwrap_or(0);
        let fired = Fired {
            time_ns: t,
            score: 1.0,
            threshold: 0.0,
            run_len: 1,
            run_start_ns,
        };
        let mut data = serde_json::json!({
            "signal": self.kind.name(),
            "what": self.what,
            "pid": self.pid,
            "tid": self.tid,
            "process": process,
            "seen_before": repeats,
        });
        if let Some(d) = &self.declared {
            data["declared"] = d.clone().into();
        }
        let evidence = Evidence::Detail {
            message: self.explain(),
            data,
        };
        Alert::warning(
            subject,
            "context",
            self.kind.name(),
            model_path,
            fired,
            evidence,
        )
    }

    /// One line for an alert.
    pub fn explain(&self) -> String {
        match self.kind {
            NoveltyKind::Program => format!("a program never run in training: {}", self.what),
            NoveltyKind::Request => match &self.declared {
                Some(d) => format!("a request never seen in training: {} ({d})", self.what),
                None => format!("a request never seen in training: {}", self.what),
            },
            NoveltyKind::NetworkStdin => format!(
                "a command read from a network connection as standard input (a remote shell): {}",
                self.what
            ),
        }
    }
}

/// Longest line of network standard input kept while waiting for its end; a longer one is
/// reported as it stands.
const MAX_STDIN_LINE: usize = 4_096;

/// What one event shows: its signal, the key a profile is checked against, and what an alert
/// names (the key itself, but for network standard input the connection and the line).
#[derive(Debug, Clone, PartialEq)]
struct Item {
    kind: NoveltyKind,
    key: String,
    what: String,
}

impl Item {
    fn named(kind: NoveltyKind, key: String) -> Self {
        Item {
            kind,
            what: key.clone(),
            key,
        }
    }
}

/// Follows connections and listening ports across events, the part learning and watching share.
#[derive(Debug, Default)]
struct Tracker {
    /// Local ports some process accepted connections on or listened on.
    listening: HashSet<u16>,
    /// Inbound connections (pid, descriptor text) whose first data was already seen.
    answered: HashSet<(u32, String)>,
    /// Per process, the part of a line read so far from a network standard input.
    stdin_lines: HashMap<u32, String>,
}

impl Tracker {
    /// The context item this event shows, if any.
    fn item(&mut self, e: &SyscallEvent) -> Option<Item> {
        let name = e.syscall.as_str();
        if name == "execve" || name == "execveat" {
            if e.ret.is_some_and(|r| r != 0) {
                return None; // a failed exec (a shell searching $PATH) ran nothing
            }
            let path = if name == "execveat" {
                e.args.get(1)
            } else {
                e.args.first()
            }?;
            return (!path.is_empty()).then(|| Item::named(NoveltyKind::Program, path.clone()));
        }
        let fd_path = e.fd_path.as_deref()?;
        if matches!(name, "listen" | "accept" | "accept4") {
            if let Some(port) = listening_port(fd_path) {
                self.listening.insert(port);
            }
            return None;
        }
        if !matches!(name, "read" | "recvfrom" | "recv" | "recvmsg" | "readv") {
            return None;
        }
        if e.ret.is_none_or(|r| r <= 0) {
            return None;
        }
        if e.args.first().is_some_and(|fd| fd == "0") && is_network(fd_path) {
            // A forking server (inetd, busybox httpd) reads its client on descriptor 0 too: a
            // connection to a listening port is a request (its first data), whatever the
            // descriptor, and the rest of it, a header or a body, nobody's command.
            let inbound = socket_ends(fd_path)
                .0
                .is_some_and(|local| self.listening.contains(&local));
            if !inbound {
                return self.stdin_line(e, fd_path);
            }
        }
        let pid = e.pid.unwrap_or(0);
        let (local, _) = connection_ports(fd_path)?;
        if !self.listening.contains(&local) {
            return None;
        }
        let data = e.args.get(1)?;
        if self.answered.len() >= MAX_CONNECTIONS {
            self.answered.clear();
        }
        if !self.answered.insert((pid, fd_path.to_string())) {
            return None; // only a connection's first data says what it asks for
        }
        Some(Item::named(NoveltyKind::Request, request_key(local, data)))
    }

    /// A read of standard input from a connection the process made (not one to a listening
    /// port): the line it completes, if any. Shells read such input a byte at a time, so lines
    /// are put together per process. Without the received data (a source that does not capture
    /// it), each process is reported once.
    fn stdin_line(&mut self, e: &SyscallEvent, fd_path: &str) -> Option<Item> {
        // `TCP:[local->remote]` as strace writes it, or `TCP:[->remote]` as the eBPF probe
        // names a socket it saw connect
        let endpoint = match socket_ends(fd_path).1 {
            Some(remote) => format!("->{remote}"),
            None => "network".to_string(),
        };
        let pid = e.pid.unwrap_or(0);
        if self.stdin_lines.len() >= MAX_CONNECTIONS {
            self.stdin_lines.clear();
        }
        let first = !self.stdin_lines.contains_key(&pid);
        let buffer = self.stdin_lines.entry(pid).or_default();
        let Some(data) = e.args.get(1).filter(|d| !d.is_empty()) else {
            return first.then(|| Item {
                kind: NoveltyKind::NetworkStdin,
                what: format!("{endpoint}: (data not captured)"),
                key: endpoint,
            });
        };
        buffer.push_str(data);
        let end = match buffer.rfind('\n') {
            Some(i) => i,
            None if buffer.len() > MAX_STDIN_LINE => buffer.len(),
            None => return None,
        };
        let complete: String = buffer.drain(..end).collect();
        if buffer.starts_with('\n') {
            buffer.remove(0);
        }
        // several lines in one read are one alert, as one pasted command would be
        let line = complete
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let mut what = format!("{endpoint}: {line}");
        if what.chars().count() > MAX_KEY_CHARS {
            what = what.chars().take(MAX_KEY_CHARS).collect();
        }
        Some(Item {
            kind: NoveltyKind::NetworkStdin,
            key: endpoint,
            what,
        })
    }

    /// A descriptor was closed: a later connection may reuse its text. A process that ended
    /// leaves no half line behind.
    fn closed(&mut self, e: &SyscallEvent) {
        match e.syscall.as_str() {
            "close" => {
                if let Some(p) = e.fd_path.as_deref() {
                    self.answered.remove(&(e.pid.unwrap_or(0), p.to_string()));
                }
            }
            "exit_group" => {
                self.stdin_lines.remove(&e.pid.unwrap_or(0));
            }
            _ => {}
        }
    }
}

/// Learns a [`ContextProfile`] from training events.
#[derive(Debug, Default)]
pub struct ContextLearner {
    profile: ContextProfile,
    tracker: Tracker,
}

impl ContextLearner {
    /// An empty learner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one training event.
    pub fn observe(&mut self, e: &SyscallEvent) {
        if is_receive(e) && e.args.get(1).is_some_and(|d| !d.is_empty()) {
            self.profile.saw_received_data = true;
        }
        if let Some(item) = self.tracker.item(e) {
            let set = match item.kind {
                NoveltyKind::Program => &mut self.profile.programs,
                NoveltyKind::Request => &mut self.profile.requests,
                NoveltyKind::NetworkStdin => &mut self.profile.network_stdin,
            };
            if set.len() < MAX_ITEMS {
                set.insert(item.key);
            }
        }
        self.tracker.closed(e);
    }

    /// Starts watching another recording: connections do not carry over.
    pub fn next_recording(&mut self) {
        self.tracker = Tracker::default();
    }

    /// What was learned.
    pub fn finish(self) -> ContextProfile {
        self.profile
    }
}

/// Checks events against a [`ContextProfile`]; one per container (or recording).
#[derive(Debug, Default)]
pub struct ContextWatcher {
    tracker: Tracker,
    /// Items already reported by this watcher, by kind, with how often each was seen.
    seen: HashMap<(NoveltyKind, String), u64>,
    /// Requests new to training that the Thing Description declares as reads (not returned).
    declared_reads: u64,
}

impl ContextWatcher {
    /// A watcher that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests new to training were not returned because the device's Thing
    /// Description declares them as reads.
    pub fn declared_reads(&self) -> u64 {
        self.declared_reads
    }

    /// The first-time action this event shows, if any. Every occurrence of an item missing
    /// from the profile is returned (the alert rule decides what pages); `repeats` says how many
    /// times this watcher saw it before.
    pub fn observe(
        &mut self,
        profile: &ContextProfile,
        e: &SyscallEvent,
    ) -> Option<(Novelty, u64)> {
        let found = self.tracker.item(e);
        self.tracker.closed(e);
        let Item { kind, key, what } = found?;
        if kind == NoveltyKind::Request && !profile.saw_received_data {
            return None;
        }
        if profile.set(kind).contains(&key) {
            return None;
        }
        let declared = match kind {
            NoveltyKind::Request if !profile.declared.is_empty() => {
                match declaration(&profile.declared, &what) {
                    // the device used as documented, changing nothing
                    Declaration::Read(_) => {
                        self.declared_reads += 1;
                        return None;
                    }
                    Declaration::Change(w) => Some(format!("the Thing Description's {w}")),
                    Declaration::Undeclared => Some("not in the device's Thing Description".into()),
                }
            }
            _ => None,
        };
        if self.seen.len() >= MAX_ITEMS {
            self.seen.clear();
        }
        let count = self.seen.entry((kind, what.clone())).or_insert(0);
        let repeats = *count;
        *count += 1;
        Some((
            Novelty {
                kind,
                what,
                time_ns: e.time_ns,
                pid: e.pid,
                tid: e.tid,
                declared,
            },
            repeats,
        ))
    }
}

fn is_receive(e: &SyscallEvent) -> bool {
    matches!(
        e.syscall.as_str(),
        "read" | "recvfrom" | "recv" | "recvmsg" | "readv"
    ) && e.fd_path.as_deref().is_some_and(is_network)
}

/// A descriptor text naming a network socket (TCP or UDP, IPv4 or IPv6).
fn is_network(fd_path: &str) -> bool {
    fd_path.starts_with("TCP") || fd_path.starts_with("UDP")
}

/// The port of a listening socket's text: `TCP:[0.0.0.0:8080]`, `TCPv6:[[::]:8080]`, or a
/// connection's local port (`accept`'s descriptor names the listening socket; some sources
/// name the new connection).
fn listening_port(fd_path: &str) -> Option<u16> {
    tcp_ends(fd_path).0
}

/// Local and remote port of a connection's text: `TCP:[127.0.0.1:8080->127.0.0.1:39834]`.
fn connection_ports(fd_path: &str) -> Option<(u16, u16)> {
    match tcp_ends(fd_path) {
        (Some(local), Some(remote)) => Some((local, remote)),
        _ => None,
    }
}

/// [`socket_ends`] of a TCP socket (IPv4 or IPv6) only.
fn tcp_ends(fd_path: &str) -> (Option<u16>, Option<u16>) {
    if fd_path.starts_with("TCP:[") || fd_path.starts_with("TCPv6:[") {
        socket_ends(fd_path)
    } else {
        (None, None)
    }
}

/// Local and remote port of any network socket's text, each if it is there.
fn socket_ends(fd_path: &str) -> (Option<u16>, Option<u16>) {
    let inner = fd_path
        .split_once(":[")
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or("");
    match inner.split_once("->") {
        Some((local, remote)) => (port_of(local), port_of(remote)),
        None => (port_of(inner), None),
    }
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

/// What a connection asked for, from its first data: `PORT METHOD /path?a&b` for HTTP (query
/// values dropped: they vary, the endpoint does not); else `PORT ` and the first line, digits
/// folded to `#`, anything unprintable to `.`.
pub fn request_key(port: u16, data: &str) -> String {
    let line = data.split(['\r', '\n']).next().unwrap_or("");
    let mut words = line.split(' ');
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let is_http = !method.is_empty()
        && method.len() <= 10
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && target.starts_with('/')
        && words.next().is_some_and(|v| v.starts_with("HTTP/"));
    let text = if is_http {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut names: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{}", names.join("&"))
        }
    } else {
        let mut folded = String::new();
        let mut in_digits = false;
        for c in line.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    folded.push('#');
                }
                in_digits = true;
                continue;
            }
            in_digits = false;
            folded.push(if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '.'
            });
        }
        folded
    };
    let mut key = format!("{port} {text}");
    if key.chars().count() > MAX_KEY_CHARS {
        key = key.chars().take(MAX_KEY_CHARS).collect();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        pid: u32,
        syscall: &str,
        args: &[&str],
        fd_path: Option<&str>,
        ret: i64,
    ) -> SyscallEvent {
        SyscallEvent {
            time_ns: Some(1),
            pid: Some(pid),
            tid: Some(pid),
            syscall: syscall.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            fd_path: fd_path.map(str::to_string),
            ret: Some(ret),
            ..SyscallEvent::default()
        }
    }

    const LISTEN: &str = "TCP:[0.0.0.0:8080]";
    const CONN: &str = "TCP:[127.0.0.1:8080->127.0.0.1:40000]";

    fn request(pid: u32, conn: &str, line: &str) -> Vec<SyscallEvent> {
        vec![
            call(pid, "accept4", &["3"], Some(LISTEN), 4),
            call(pid, "recvfrom", &["4", line], Some(conn), line.len() as i64),
            call(pid, "recvfrom", &["4", "more data"], Some(conn), 9),
            call(pid, "close", &["4"], Some(conn), 0),
        ]
    }

    #[test]
    fn request_keys_keep_the_endpoint_and_drop_values() {
        assert_eq!(
            request_key(
                80,
                "GET /0/config/set?threshold=200000&x=1 HTTP/1.1\r\nHost: a\r\n"
            ),
            "80 GET /0/config/set?threshold&x"
        );
        assert_eq!(request_key(80, "GET / HTTP/1.0\r\n"), "80 GET /");
        assert_eq!(request_key(23, "login 1234\u{1}\n"), "23 login #.");
        assert_eq!(
            request_key(80, "GET /x"),
            "80 GET /x",
            "not HTTP without a version"
        );
    }

    #[test]
    fn programs_and_requests_never_seen_in_training_are_reported_once_each_time() {
        let mut learner = ContextLearner::new();
        let mut training = vec![call(1, "execve", &["/usr/bin/motion"], None, 0)];
        training.extend(request(1, CONN, "GET /0/detection/status HTTP/1.1\r\n"));
        for e in &training {
            learner.observe(e);
        }
        let profile = learner.finish();
        assert!(profile.saw_received_data);
        assert_eq!(
            profile.requests.iter().collect::<Vec<_>>(),
            ["8080 GET /0/detection/status"]
        );

        let mut watcher = ContextWatcher::new();
        let mut found = Vec::new();
        let mut test = vec![
            call(1, "execve", &["/usr/bin/motion"], None, 0),
            // a shell searching $PATH: the failed tries ran nothing
            call(2, "execve", &["/usr/local/bin/ps"], None, -2),
            call(2, "execve", &["/usr/bin/ps"], None, 0),
        ];
        test.extend(request(1, CONN, "GET /0/detection/status HTTP/1.1\r\n"));
        test.extend(request(1, CONN, "GET /0/detection/pause HTTP/1.1\r\n"));
        test.push(call(3, "execve", &["/usr/bin/ps"], None, 0));
        // a client connection of the device itself is not a request to it
        test.push(call(
            1,
            "read",
            &["5", "HTTP/1.1 200 OK"],
            Some("TCP:[127.0.0.1:50000->127.0.0.1:9000]"),
            15,
        ));
        for e in &test {
            if let Some((n, repeats)) = watcher.observe(&profile, e) {
                found.push((n.kind, n.what, repeats));
            }
        }
        assert_eq!(
            found,
            vec![
                (NoveltyKind::Program, "/usr/bin/ps".to_string(), 0),
                (
                    NoveltyKind::Request,
                    "8080 GET /0/detection/pause".to_string(),
                    0
                ),
                (NoveltyKind::Program, "/usr/bin/ps".to_string(), 1),
            ]
        );
    }

    #[test]
    fn with_a_thing_description_declared_reads_are_not_raised_and_the_rest_say_what_they_are() {
        let mut learner = ContextLearner::new();
        for e in request(1, CONN, "GET /0/config/list HTTP/1.1\r\n") {
            learner.observe(&e);
        }
        let mut profile = learner.finish();
        profile.declared = vec![
            DeclaredRequest::new("GET", "/0/detection/status", true, "property status"),
            DeclaredRequest::new("GET", "/0/detection/pause", false, "action pause"),
        ];
        let mut watcher = ContextWatcher::new();
        let mut found = Vec::new();
        for line in [
            "GET /0/config/list HTTP/1.1\r\n",
            "GET /0/detection/status HTTP/1.1\r\n",
            "GET /0/detection/pause HTTP/1.1\r\n",
            "GET /cgi-bin/x HTTP/1.1\r\n",
        ] {
            for e in request(1, CONN, line) {
                if let Some((n, _)) = watcher.observe(&profile, &e) {
                    found.push(n.explain());
                }
            }
        }
        assert_eq!(watcher.declared_reads(), 1);
        assert_eq!(
            found,
            [
                "a request never seen in training: 8080 GET /0/detection/pause \
                 (the Thing Description's action pause)",
                "a request never seen in training: 8080 GET /cgi-bin/x \
                 (not in the device's Thing Description)",
            ]
        );
        // the declared surface is part of the model file
        let back: ContextProfile =
            serde_json::from_str(&serde_json::to_string(&profile).unwrap()).unwrap();
        assert_eq!(back, profile);
    }

    /// A process reading `text` a byte at a time from its standard input `conn`, as bash does.
    fn typed(pid: u32, conn: &str, text: &str) -> Vec<SyscallEvent> {
        text.chars()
            .map(|c| call(pid, "read", &["0", &c.to_string(), "1"], Some(conn), 1))
            .collect()
    }

    #[test]
    fn each_line_a_remote_shell_reads_from_the_network_is_raised_and_quoted() {
        const INETD: &str = "TCP:[127.0.0.1:23->127.0.0.1:40000]";
        const AGENT: &str = "TCP:[127.0.0.1:50500->127.0.0.1:7000]";
        const SHELL: &str = "TCP:[127.0.0.1:53290->127.0.0.1:18083]";
        let mut learner = ContextLearner::new();
        // an inetd-style service: its standard input is the accepted connection, a request
        learner.observe(&call(1, "accept4", &["3"], Some("TCP:[0.0.0.0:23]"), 4));
        let mut training = typed(7, INETD, "help\n");
        // a management agent whose standard input is a connection it made
        training.extend(typed(8, AGENT, "status\n"));
        for e in &training {
            learner.observe(e);
        }
        let profile = learner.finish();
        assert_eq!(profile.network_stdin.iter().collect::<Vec<_>>(), ["->7000"]);
        assert_eq!(profile.requests.iter().collect::<Vec<_>>(), ["23 h"]);

        let mut watcher = ContextWatcher::new();
        let mut test = vec![call(1, "accept4", &["3"], Some("TCP:[0.0.0.0:23]"), 4)];
        test.extend(typed(7, INETD, "help\nquit\n"));
        test.extend(typed(8, AGENT, "status\nreboot\n"));
        // `bash 0</dev/tcp/…`: a half line, a read of a pipe between, the rest, and `exit`
        test.extend(typed(9, SHELL, "id; una"));
        test.push(call(9, "read", &["3", "x", "1"], Some("pipe:[5]"), 1));
        test.extend(typed(9, SHELL, "me -a\nexit\n"));
        // a reply on an ordinary connection of the device is nobody's standard input
        test.push(call(
            1,
            "read",
            &["5", "ls\n"],
            Some("TCP:[127.0.0.1:50000->127.0.0.1:9000]"),
            3,
        ));
        let mut found = Vec::new();
        for e in &test {
            if let Some((n, _)) = watcher.observe(&profile, e) {
                found.push(n.explain());
            }
        }
        assert_eq!(
            found,
            [
                "a command read from a network connection as standard input (a remote shell): \
                 ->18083: id; uname -a",
                "a command read from a network connection as standard input (a remote shell): \
                 ->18083: exit",
            ]
        );

        // the eBPF probe names a socket it saw connect by its remote end only
        let mut watcher = ContextWatcher::new();
        let live: Vec<_> = typed(9, "TCP:[->127.0.0.1:4444]", "id\n")
            .iter()
            .filter_map(|e| watcher.observe(&profile, e).map(|(n, _)| n.what))
            .collect();
        assert_eq!(live, ["->4444: id"]);

        // a source without the received data reports the connection once
        let mut watcher = ContextWatcher::new();
        let blind: Vec<_> = (0..3)
            .filter_map(|_| {
                let e = call(9, "read", &["0"], Some(SHELL), 1);
                watcher.observe(&profile, &e).map(|(n, _)| n.what)
            })
            .collect();
        assert_eq!(blind, ["->18083: (data not captured)"]);
    }

    #[test]
    fn without_received_data_in_training_requests_are_not_judged() {
        let mut learner = ContextLearner::new();
        learner.observe(&call(1, "execve", &["/bin/sh"], None, 0));
        let profile = learner.finish();
        let mut watcher = ContextWatcher::new();
        for e in request(1, CONN, "GET /anything HTTP/1.1\r\n") {
            assert_eq!(watcher.observe(&profile, &e), None);
        }
    }
}

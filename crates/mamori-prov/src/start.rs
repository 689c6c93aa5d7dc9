//! Where tracking starts: a detection point as a person writes it (`file:/tmp/x@2026-12-06T12:00:00Z`,
//! `pid:812`, `socket:203.0.113.7:4444`), resolved on a graph to a node and a time threshold.

use std::fmt;
use std::str::FromStr;

use mamori_audit::SockAddr;
use serde::Serialize;

use crate::build::socket_key;
use crate::graph::{Node, NodeId, ProvGraph, Stamp};
use crate::timefmt;
use crate::Error;

/// Which way to track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// BackTracker: from the detection point to what caused it.
    Backward,
    /// From a point to everything it affected afterwards.
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        })
    }
}

/// A moment in the log: a time, or an event by serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum At {
    /// Nanoseconds since the Unix epoch (every event of that millisecond and before counts as
    /// at or before it).
    Time(i64),
    /// The event with this audit serial.
    Serial(u64),
}

/// The object a detection point names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A file by name (any of its names; normalised).
    File {
        /// The path.
        path: String,
    },
    /// A file by inode number.
    Inode {
        /// The inode.
        inode: u64,
    },
    /// A process by pid (the image live at the time).
    Pid {
        /// The pid.
        pid: u32,
    },
    /// A socket by address, spelled as [`crate::Socket::addr`] spells it.
    Socket {
        /// The address key (`203.0.113.7:4444`, `localhost:8080`, `unix:/run/x.sock`).
        addr: String,
    },
}

/// A detection point: an object, optionally at a moment.
///
/// Syntax (`FromStr`): `file:/path[@AT]`, `inode:N[@AT]`, `pid:N[@AT]`,
/// `socket:IP:PORT[@AT]`, `socket:[IPv6]:PORT[@AT]`, `socket:unix:PATH[@AT]`, where AT is Unix
/// seconds (`1765022400.25`), RFC 3339 (`2026-12-06T12:00:00Z`) or `serial:N`. The `@` is the
/// last one in the text, and what follows it is taken as a moment only when it starts with a
/// digit or `serial:` (so `file:/tmp/me@home` is a path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartSpec {
    /// The object.
    pub target: Target,
    /// The moment; `None`: the end of the log backward, the object's first appearance forward.
    pub at: Option<At>,
}

/// A resolved starting point: a node and its time threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// The node.
    pub node: NodeId,
    /// Backward: events at or before this affected it; forward: events at or after it.
    pub at: Stamp,
}

impl fmt::Display for StartSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::File { path } => write!(f, "file:{path}")?,
            Target::Inode { inode } => write!(f, "inode:{inode}")?,
            Target::Pid { pid } => write!(f, "pid:{pid}")?,
            Target::Socket { addr } => write!(f, "socket:{addr}")?,
        }
        match self.at {
            Some(At::Time(ns)) => write!(f, "@{}", timefmt::format_utc(ns)),
            Some(At::Serial(s)) => write!(f, "@serial:{s}"),
            None => Ok(()),
        }
    }
}

fn parse_err(input: &str, reason: impl Into<String>) -> Error {
    Error::Start {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn parse_at(input: &str, s: &str) -> Result<At, Error> {
    if let Some(n) = s.strip_prefix("serial:") {
        return n
            .parse::<u64>()
            .map(At::Serial)
            .map_err(|_| parse_err(input, format!("`{n}` is not a serial number")));
    }
    timefmt::parse_time(s)
        .map(At::Time)
        .map_err(|e| parse_err(input, e))
}

impl FromStr for StartSpec {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(parse_err(
                input,
                "expected file:/path, inode:N, pid:N or socket:ADDR (optionally @TIME or @serial:N)",
            ));
        };
        let (body, at) = match rest.rsplit_once('@') {
            Some((b, a))
                if a.starts_with(|c: char| c.is_ascii_digit()) || a.starts_with("serial:") =>
            {
                (b, Some(parse_at(input, a)?))
            }
            _ => (rest, None),
        };
        if body.is_empty() {
            return Err(parse_err(input, format!("nothing after `{kind}:`")));
        }
        let target = match kind {
            "file" => {
                if !body.starts_with('/') {
                    return Err(parse_err(input, "a file path must be absolute"));
                }
                Target::File {
                    path: crate::paths::normalize(body),
                }
            }
            "inode" => Target::Inode {
                inode: body
                    .parse()
                    .map_err(|_| parse_err(input, format!("`{body}` is not an inode number")))?,
            },
            "pid" => {
                let pid: u32 = body
                    .parse()
                    .map_err(|_| parse_err(input, format!("`{body}` is not a pid")))?;
                if pid == 0 {
                    return Err(parse_err(input, "pid 0 is not a process"));
                }
                Target::Pid { pid }
            }
            "socket" => Target::Socket {
                addr: parse_socket(input, body)?,
            },
            other => {
                return Err(parse_err(
                    input,
                    format!("unknown kind `{other}`: expected file, inode, pid or socket"),
                ))
            }
        };
        Ok(StartSpec { target, at })
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, `unix:PATH`, `netlink:N` → the graph's key.
fn parse_socket(input: &str, body: &str) -> Result<String, Error> {
    if let Some(path) = body.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(parse_err(input, "a unix socket needs a path"));
        }
        return Ok(format!("unix:{path}"));
    }
    if let Some(n) = body.strip_prefix("netlink:") {
        let pid: u32 = n
            .parse()
            .map_err(|_| parse_err(input, format!("`{n}` is not a netlink port id")))?;
        return Ok(format!("netlink:{pid}"));
    }
    let bad = || {
        parse_err(
            input,
            format!("`{body}` is not IP:PORT, [IPv6]:PORT, localhost:PORT or unix:PATH"),
        )
    };
    let (host, port) = body.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port
        .parse()
        .map_err(|_| parse_err(input, format!("`{port}` is not a port (0-65535)")))?;
    let sa = if host == "localhost" {
        return Ok(format!("localhost:{port}"));
    } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        SockAddr::Inet6 {
            addr: v6.to_string(),
            port,
        }
    } else {
        host.parse::<std::net::Ipv4Addr>().map_err(|_| bad())?;
        SockAddr::Inet {
            addr: host.to_string(),
            port,
        }
    };
    socket_key(&sa).map(|(k, _)| k).ok_or_else(bad)
}

impl StartSpec {
    /// The moment as a stamp, on this graph (a serial must be in the log). A time covers its
    /// whole millisecond: backward every event logged in it counts as at or before it,
    /// forward as at or after it.
    fn at_stamp(&self, g: &ProvGraph, dir: Direction) -> Result<Option<Stamp>, Error> {
        match self.at {
            None => Ok(None),
            Some(At::Time(ns)) => Ok(Some(match dir {
                Direction::Backward => Stamp::end_of(ns),
                Direction::Forward => Stamp::start_of(ns),
            })),
            Some(At::Serial(s)) => match g.time_of_serial(s) {
                Some(t) => Ok(Some(Stamp {
                    time_ns: t,
                    serial: s,
                })),
                None => Err(Error::NotFound(format!(
                    "no event with serial {s} in the log"
                ))),
            },
        }
    }

    /// The candidate nodes the target names.
    fn candidates(&self, g: &ProvGraph) -> Result<Vec<NodeId>, Error> {
        let found = match &self.target {
            Target::File { path } => g.files_named(path),
            Target::Inode { inode } => {
                let ids = g.files_with_inode(*inode);
                let mut devs: Vec<&str> = ids
                    .iter()
                    .filter_map(|&id| g.node(id).as_file().and_then(|f| f.dev.as_deref()))
                    .collect();
                devs.sort_unstable();
                devs.dedup();
                if devs.len() > 1 {
                    return Err(Error::Ambiguous(format!(
                        "inode {inode} is on several devices ({}); name the file with file:/path",
                        devs.join(", ")
                    )));
                }
                ids
            }
            Target::Pid { pid } => g.processes_with_pid(*pid),
            Target::Socket { addr } => g.socket(addr).into_iter().collect(),
        };
        if found.is_empty() {
            return Err(Error::NotFound(format!(
                "{} is not in the graph",
                self.target_text()
            )));
        }
        Ok(found)
    }

    fn target_text(&self) -> String {
        StartSpec {
            target: self.target.clone(),
            at: None,
        }
        .to_string()
    }

    /// The node and threshold this detection point means on `g`.
    ///
    /// Backward: a file or socket at AT is the node last modified at or before AT, with the
    /// threshold of that modification (without one, AT itself); a pid is the image of that pid
    /// live at AT (the latest started at or before it). Without AT: the end of the log.
    ///
    /// Forward: the threshold is AT; without it, the object's first modification (files), its
    /// start (processes), or its first event (sockets).
    pub fn resolve(&self, g: &ProvGraph, dir: Direction) -> Result<Anchor, Error> {
        let cands = self.candidates(g)?;
        let at = self.at_stamp(g, dir)?;
        let end = g.stats().last.unwrap_or(Stamp::MAX);
        if let Target::Pid { pid } = self.target {
            let limit = at.unwrap_or(Stamp::MAX);
            let live = cands
                .iter()
                .copied()
                .filter(|&id| g.process_start(id).is_some_and(|s| s <= limit))
                .max_by_key(|&id| g.process_start(id));
            let Some(node) = live else {
                return Err(Error::NotFound(format!(
                    "no process with pid {pid} had started by {}",
                    limit.utc()
                )));
            };
            let start = g.process_start(node).unwrap_or(Stamp::MIN);
            return Ok(Anchor {
                node,
                at: match dir {
                    Direction::Backward => at.unwrap_or(end),
                    Direction::Forward => at.unwrap_or(start),
                },
            });
        }
        match dir {
            Direction::Backward => {
                let limit = at.unwrap_or(Stamp::MAX);
                let upto = g.edges().partition_point(|e| e.stamp <= limit);
                // The latest modification of any candidate at or before the limit.
                let last_write = g.edges()[..upto]
                    .iter()
                    .rev()
                    .find(|e| cands.contains(&e.dst) && !matches!(g.node(e.src), Node::File(_)));
                Ok(match last_write {
                    Some(e) => Anchor {
                        node: e.dst,
                        at: e.stamp,
                    },
                    None => {
                        // Never modified by then: the candidate touched last before the limit.
                        let node = g.edges()[..upto]
                            .iter()
                            .rev()
                            .find_map(|e| [e.dst, e.src].into_iter().find(|n| cands.contains(n)))
                            .unwrap_or(cands[cands.len() - 1]);
                        Anchor {
                            node,
                            at: at.unwrap_or(end),
                        }
                    }
                })
            }
            Direction::Forward => {
                let from = at.unwrap_or(Stamp::MIN);
                let lo = g.edges().partition_point(|e| e.stamp < from);
                let first = g.edges()[lo..].iter().find_map(|e| {
                    let modifies =
                        cands.contains(&e.dst) && !matches!(g.node(e.src), Node::File(_));
                    let emits = cands.contains(&e.src);
                    if modifies {
                        Some((e.dst, e.stamp))
                    } else if emits {
                        Some((e.src, e.stamp))
                    } else {
                        None
                    }
                });
                Ok(match (first, at) {
                    (Some((node, _)), Some(a)) => Anchor { node, at: a },
                    (Some((node, s)), None) => Anchor { node, at: s },
                    (None, _) => Anchor {
                        node: cands[cands.len() - 1],
                        at: at.unwrap_or(end),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> StartSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<StartSpec>().unwrap_err().to_string()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            ok("file:/tmp/x"),
            StartSpec {
                target: Target::File {
                    path: "/tmp/x".into()
                },
                at: None
            }
        );
        assert_eq!(
            ok("file:/tmp//x/@2026-12-06T12:00:00Z").at,
            Some(At::Time(1_796_558_400_000_000_000))
        );
        assert_eq!(
            ok("file:/tmp//x/").target,
            Target::File {
                path: "/tmp/x".into()
            }
        );
        assert_eq!(ok("file:/tmp/x@serial:42").at, Some(At::Serial(42)));
        assert_eq!(
            ok("file:/tmp/x@1765022400.5").at,
            Some(At::Time(1_765_022_400_500_000_000))
        );
        assert_eq!(
            ok("file:/home/me@home").target,
            Target::File {
                path: "/home/me@home".into()
            }
        );
        assert_eq!(ok("inode:1234").target, Target::Inode { inode: 1234 });
        assert_eq!(
            ok("pid:812@serial:7"),
            StartSpec {
                target: Target::Pid { pid: 812 },
                at: Some(At::Serial(7))
            }
        );
        assert_eq!(
            ok("socket:203.0.113.7:4444").target,
            Target::Socket {
                addr: "203.0.113.7:4444".into()
            }
        );
        assert_eq!(
            ok("socket:127.0.0.1:8080").target,
            Target::Socket {
                addr: "localhost:8080".into()
            }
        );
        assert_eq!(
            ok("socket:localhost:8080").target,
            Target::Socket {
                addr: "localhost:8080".into()
            }
        );
        assert_eq!(
            ok("socket:[2001:db8::1]:22").target,
            Target::Socket {
                addr: "[2001:db8::1]:22".into()
            }
        );
        assert_eq!(
            ok("socket:[::1]:22").target,
            Target::Socket {
                addr: "localhost:22".into()
            }
        );
        assert_eq!(
            ok("socket:unix:/run/x.sock").target,
            Target::Socket {
                addr: "unix:/run/x.sock".into()
            }
        );
        assert_eq!(ok("socket:1.2.3.4:80@serial:9").at, Some(At::Serial(9)));
        // Display round-trips.
        for s in [
            "file:/tmp/x@serial:42",
            "pid:812",
            "socket:unix:/run/x.sock",
            "inode:5@2026-12-06T12:00:00.000Z",
        ] {
            assert_eq!(ok(s).to_string(), s);
        }
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        assert!(err("/tmp/x").contains("expected file:/path"));
        assert!(err("fil:/tmp/x").contains("unknown kind `fil`"));
        assert!(err("file:tmp/x").contains("absolute"));
        assert!(err("file:").contains("nothing after `file:`"));
        assert!(err("file:/x@2026-13-01T00:00:00Z").contains("no such date"));
        assert!(err("file:/x@12:00").contains("RFC 3339"));
        assert!(err("file:/x@serial:abc").contains("`abc` is not a serial number"));
        assert!(err("pid:abc").contains("`abc` is not a pid"));
        assert!(err("pid:0").contains("pid 0"));
        assert!(err("pid:-1").contains("not a pid"));
        assert!(err("inode:x").contains("not an inode number"));
        assert!(err("socket:1.2.3.4").contains("is not IP:PORT"));
        assert!(err("socket:1.2.3.4:99999").contains("not a port"));
        assert!(err("socket:999.1.1.1:80").contains("is not IP:PORT"));
        assert!(err("socket:unix:").contains("needs a path"));
        // Every message names the input.
        assert!(err("pid:abc").contains("pid:abc"));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for s in [
            "",
            ":",
            "@",
            "file:@",
            "file:/@",
            "file:/x@",
            "file:/x@@1",
            "pid:@1",
            "socket:[",
            "socket:[]:1",
            "socket::",
            "socket:unix",
            "inode:1@serial:",
            "file:/é@1é",
            "pid:1@2026-12-06T12:00:00é",
            "socket:é:1",
            "file:/x@9999999999999999999999",
        ] {
            let _ = s.parse::<StartSpec>();
        }
    }
}

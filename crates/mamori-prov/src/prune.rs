//! Noise pruning: which objects tracking does not follow.
//!
//! BackTracker without filters drowns in objects every process touches (the dynamic loader's
//! cache, shared libraries, `/proc`, `/dev/null`, locale files) that join unrelated processes.
//! Two kinds of rule, both globs (`*` matches any run of characters, slashes included):
//!
//! - **noise**: pseudo-files, caches and hubs. Never followed, written or not: backward they
//!   are not added as the source of a read or a map, forward not as the sink of a write. A file
//!   executed from such a place is still followed (a payload dropped in a cache directory and
//!   run matters). `keep` lists exceptions (`/dev/shm`, a classic drop site).
//! - **system**: system files and shared libraries, followed only if some process in the log
//!   modified them. A read of `/etc/passwd` that nothing in the log wrote cannot carry the
//!   attack; an `/etc/cron.d/x` or a `libc.so.6` that the attacker wrote is always followed.
//!
//! Sockets matching `sockets` (logging and name-service sockets every process talks to) are
//! never followed. The start node is never pruned, and an edge whose source is already in the
//! trace is never dropped by these rules.

use serde::{Deserialize, Serialize};

use crate::graph::{Edge, Node, NodeId, Op, ProvGraph};
use crate::paths::glob_match;

/// What tracking does not follow. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneRules {
    /// Pseudo-files, caches and hubs: never followed (except executed files).
    pub noise: Vec<String>,
    /// Exceptions to `noise`.
    pub keep: Vec<String>,
    /// System files and libraries: followed only if a process in the log modified them.
    pub system: Vec<String>,
    /// Socket addresses never followed (as [`crate::Socket::addr`] spells them).
    pub sockets: Vec<String>,
    /// Follow edges through a network peer other than the start: backward, the processes that
    /// earlier sent to the same address; forward, those that later received from it. Off by
    /// default: the peer is outside the host, so what it received is not known to have come
    /// back, and shared services (DNS, an update server) would join unrelated processes.
    pub cross_network_peers: bool,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for PruneRules {
    fn default() -> Self {
        PruneRules {
            noise: strings(&[
                "/proc",
                "/proc/*",
                "/sys/*",
                "/dev/*",
                "/run/utmp",
                "/var/run/utmp",
                "/var/log/wtmp",
                "/var/log/lastlog",
                "/etc/ld.so.cache",
                "/etc/localtime",
                "/usr/lib/locale/*",
                "/usr/share/locale/*",
                "/usr/share/zoneinfo/*",
                "/usr/lib/x86_64-linux-gnu/gconv/*",
                "/var/cache/*",
                "*/.cache/*",
            ]),
            keep: strings(&["/dev/shm/*", "/dev/mqueue/*"]),
            system: strings(&[
                "/usr/*",
                "/etc/*",
                "/bin/*",
                "/sbin/*",
                "/lib/*",
                "/lib32/*",
                "/lib64/*",
                "/libx32/*",
                "/opt/*",
                "*.so",
                "*.so.*",
            ]),
            sockets: strings(&[
                "netlink:*",
                "unix:/dev/log",
                "unix:/run/systemd/journal/*",
                "unix:/run/nscd/*",
                "unix:/var/run/nscd/*",
            ]),
            cross_network_peers: false,
        }
    }
}

/// A node's class under the rules, computed once per node per track.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Unknown,
    /// Followed.
    Keep,
    /// Not followed (except as an executed image).
    Noise,
    /// Not followed (unmodified system file or library).
    System,
    /// Not followed at all (a listed socket).
    Drop,
}

impl PruneRules {
    /// No pruning at all (network peers are still not crossed; set `cross_network_peers`).
    pub fn none() -> Self {
        PruneRules {
            noise: Vec::new(),
            keep: Vec::new(),
            system: Vec::new(),
            sockets: Vec::new(),
            cross_network_peers: false,
        }
    }

    fn any(list: &[String], text: &str) -> bool {
        list.iter().any(|p| glob_match(p, text))
    }

    /// Whether a file named `path` is noise.
    pub fn is_noise(&self, path: &str) -> bool {
        Self::any(&self.noise, path) && !Self::any(&self.keep, path)
    }

    /// Whether a file named `path` is a system file (pruned unless modified in the log).
    pub fn is_system(&self, path: &str) -> bool {
        Self::any(&self.system, path)
    }

    pub(crate) fn classify(&self, g: &ProvGraph, id: NodeId) -> Class {
        match g.node(id) {
            Node::File(f) => {
                // Every name counts: a file is noise or system only if all its names are, so
                // a renamed-away or linked-out copy is not hidden by its other name.
                if f.paths.is_empty() {
                    return Class::Keep;
                }
                if f.paths.iter().all(|p| self.is_noise(p)) {
                    Class::Noise
                } else if !g.is_modified(id)
                    && f.paths
                        .iter()
                        .all(|p| self.is_noise(p) || self.is_system(p))
                {
                    Class::System
                } else {
                    Class::Keep
                }
            }
            Node::Socket(s) if Self::any(&self.sockets, &s.addr) => Class::Drop,
            _ => Class::Keep,
        }
    }
}

/// Per-track cache of node classes.
pub(crate) struct Pruner<'a> {
    rules: &'a PruneRules,
    graph: &'a ProvGraph,
    cache: Vec<Class>,
    start: NodeId,
}

impl<'a> Pruner<'a> {
    pub(crate) fn new(rules: &'a PruneRules, graph: &'a ProvGraph, start: NodeId) -> Self {
        Pruner {
            rules,
            graph,
            cache: vec![Class::Unknown; graph.nodes().len()],
            start,
        }
    }

    fn class(&mut self, id: NodeId) -> Class {
        let c = self.cache[id.index()];
        if c != Class::Unknown {
            return c;
        }
        let c = self.rules.classify(self.graph, id);
        self.cache[id.index()] = c;
        c
    }

    /// Backward: whether `e.src` may join the trace through `e`.
    pub(crate) fn source_pruned(&mut self, e: &Edge) -> bool {
        if e.src == self.start {
            return false;
        }
        match self.class(e.src) {
            Class::Keep | Class::Unknown => false,
            Class::Noise => e.op != Op::Exec,
            Class::System | Class::Drop => true,
        }
    }

    /// Forward: whether `e.dst` may join the trace through `e`. System files are not pruned
    /// here: a file reached forward was written by a traced process.
    pub(crate) fn sink_pruned(&mut self, e: &Edge) -> bool {
        if e.dst == self.start {
            return false;
        }
        matches!(self.class(e.dst), Class::Noise | Class::Drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules() {
        let r = PruneRules::default();
        assert!(r.is_noise("/proc/self/maps"));
        assert!(r.is_noise("/dev/null"));
        assert!(!r.is_noise("/dev/shm/x"), "/dev/shm is a drop site");
        assert!(r.is_noise("/home/u/.cache/x"));
        assert!(r.is_system("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(r.is_system("/etc/passwd"));
        assert!(r.is_system("/home/u/lib/libx.so.1"));
        assert!(!r.is_system("/tmp/x"));
        assert!(!r.is_noise("/tmp/x"));
        let none = PruneRules::none();
        assert!(!none.is_noise("/proc/self/maps"));
        assert!(!none.is_system("/etc/passwd"));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let r = PruneRules::default();
        let s = serde_json::to_string(&r).unwrap();
        let back: PruneRules = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
        let partial: PruneRules = serde_json::from_str(r#"{"noise":["/x/*"]}"#).unwrap();
        assert_eq!(partial.noise, vec!["/x/*".to_string()]);
        assert_eq!(partial.system, PruneRules::default().system);
    }
}

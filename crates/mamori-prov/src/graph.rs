//! The provenance graph: process, file, socket and pipe nodes joined by typed, timestamped edges
//! that point the way information flows.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Serialize;

use crate::timefmt;

/// A node's index in [`ProvGraph::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An edge's index in [`ProvGraph::edges`] (edges are sorted by [`Stamp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EdgeId(pub u32);

impl EdgeId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// When an event happened: its time, then its serial. Audit stamps have millisecond resolution
/// and many events share one; the serial orders them within it, so thresholds compare
/// `(time, serial)` and an event logged after the detection point in the same millisecond is
/// not mistaken for one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Stamp {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The audit serial.
    pub serial: u64,
}

impl Stamp {
    /// Earlier than any event.
    pub const MIN: Stamp = Stamp {
        time_ns: i64::MIN,
        serial: 0,
    };
    /// Later than any event.
    pub const MAX: Stamp = Stamp {
        time_ns: i64::MAX,
        serial: u64::MAX,
    };

    /// Every event at or before `time_ns` (whatever its serial) is at or before this stamp.
    pub fn end_of(time_ns: i64) -> Stamp {
        Stamp {
            time_ns,
            serial: u64::MAX,
        }
    }

    /// Every event at or after `time_ns` is at or after this stamp.
    pub fn start_of(time_ns: i64) -> Stamp {
        Stamp { time_ns, serial: 0 }
    }

    /// `2026-12-06T12:00:01.234Z`.
    pub fn utc(&self) -> String {
        timefmt::format_utc(self.time_ns)
    }
}

/// What an edge's event did. The edge points the way information flowed: from the file read to
/// the reader, from the writer to the file, from the parent to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// File → process: the image (or its interpreter) executed; process → process: the old
    /// image of the pid became the new one.
    Exec,
    /// Parent → child: fork, vfork, clone (not threads), clone3.
    Fork,
    /// File, pipe or socket → process: opened for reading (or a logged read).
    Read,
    /// Process → file, pipe or socket: opened for writing (or a logged write).
    Write,
    /// Process → file: created it (open with `O_CREAT` that made it, `creat`, `mknod`).
    Create,
    /// Process → file: renamed it; the file keeps its identity and gains the new name.
    Rename,
    /// Process → file: removed a name (unlink, rmdir, a rename that replaced it).
    Unlink,
    /// Process → file: changed its mode.
    Chmod,
    /// Process → file: changed its owner.
    Chown,
    /// Process → file: truncated it.
    Truncate,
    /// Process → file: gave it another name (hard link) or created a symlink.
    Link,
    /// Process ↔ socket: connected (data flows both ways, so two edges).
    Connect,
    /// Socket ↔ process: accepted a connection from the peer (two edges).
    Accept,
    /// Process → socket: bound a local address.
    Bind,
    /// Process → socket: sendto, sendmsg.
    Send,
    /// Socket → process: recvfrom, recvmsg.
    Recv,
    /// Process → process: sent a signal.
    Kill,
    /// Process → process: ptrace (the tracer controls the tracee).
    Ptrace,
    /// File → process: mapped executable (`PROT_EXEC`).
    MmapExec,
    /// Process → pipe or socket pair: created it.
    Pipe,
}

impl Op {
    /// The lowercase name used in labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Exec => "exec",
            Op::Fork => "fork",
            Op::Read => "read",
            Op::Write => "write",
            Op::Create => "create",
            Op::Rename => "rename",
            Op::Unlink => "unlink",
            Op::Chmod => "chmod",
            Op::Chown => "chown",
            Op::Truncate => "truncate",
            Op::Link => "link",
            Op::Connect => "connect",
            Op::Accept => "accept",
            Op::Bind => "bind",
            Op::Send => "send",
            Op::Recv => "recv",
            Op::Kill => "kill",
            Op::Ptrace => "ptrace",
            Op::MmapExec => "mmap_exec",
            Op::Pipe => "pipe",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One edge: `src` affected `dst` at `stamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Where information came from.
    pub src: NodeId,
    /// Where it went.
    pub dst: NodeId,
    /// What the event did.
    pub op: Op,
    /// When.
    pub stamp: Stamp,
    /// Index + 1 into the graph's detail strings (rename's names, the signal, …).
    pub(crate) detail: Option<NonZeroU32>,
}

/// How a process node came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A successful execve/execveat: a new image.
    Exec,
    /// A fork/clone logged by the parent, or a child first seen by its `ppid`.
    Fork,
    /// A pid seen with no parent known (its first event, or a signal's target).
    Seen,
}

/// A process image: one node per exec'd image, so a pid that execs twice has three nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent pid as logged when the node was made (0 when unknown).
    pub ppid: u32,
    /// The audit serial of the event that started this image (exec, fork or first sighting):
    /// with the pid, the identity that survives pid reuse.
    pub start_serial: u64,
    /// That event's time.
    pub start_ns: i64,
    /// How the node was made.
    pub origin: Origin,
    /// The executable (`exe=`); empty when never seen (a parent known only by pid).
    pub exe: String,
    /// Arguments of the exec (empty for forks, which share the parent's).
    pub argv: Vec<String>,
    /// The command name (`comm=`).
    pub comm: String,
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Audit (login) uid; `u32::MAX` when unset.
    pub auid: u32,
}

/// A file: identified by device and inode, with every name it was seen under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct File {
    /// Device `MAJOR:MINOR` (hex) as logged; `None` when identified by path only.
    pub dev: Option<String>,
    /// Inode; `None` when identified by path only.
    pub inode: Option<u64>,
    /// All names seen, first first (a rename or hard link adds one).
    pub paths: Vec<String>,
}

impl File {
    /// The latest name (what a person would look for), or `?` when none was logged.
    pub fn path(&self) -> &str {
        self.paths.last().map(String::as_str).unwrap_or("?")
    }
}

/// A socket endpoint, by address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Socket {
    /// The address: `203.0.113.7:4444`, `[2001:db8::1]:22`, `localhost:8080` (loopback and
    /// wildcard addresses are folded into `localhost` so a local client's connect and the
    /// server's bind meet), `unix:/run/x.sock`, `netlink:0`, `socketpair:SERIAL`.
    pub addr: String,
    /// Loopback, wildcard, unix, netlink or socket pair: not a network peer.
    pub local: bool,
}

/// A pipe made by pipe/pipe2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipe {
    /// The serial of the pipe call.
    pub serial: u64,
    /// The pid that made it.
    pub pid: u32,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Node {
    /// A process image.
    Process(Process),
    /// A file.
    File(File),
    /// A socket endpoint.
    Socket(Socket),
    /// A pipe.
    Pipe(Pipe),
}

impl Node {
    /// `process`, `file`, `socket` or `pipe`.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Process(_) => "process",
            Node::File(_) => "file",
            Node::Socket(_) => "socket",
            Node::Pipe(_) => "pipe",
        }
    }

    /// The process, when this is one.
    pub fn as_process(&self) -> Option<&Process> {
        match self {
            Node::Process(p) => Some(p),
            _ => None,
        }
    }

    /// The file, when this is one.
    pub fn as_file(&self) -> Option<&File> {
        match self {
            Node::File(f) => Some(f),
            _ => None,
        }
    }

    /// The socket, when this is one.
    pub fn as_socket(&self) -> Option<&Socket> {
        match self {
            Node::Socket(s) => Some(s),
            _ => None,
        }
    }

    /// A network peer: an external source of information.
    pub fn is_network_peer(&self) -> bool {
        matches!(self, Node::Socket(s) if !s.local)
    }

    /// One line naming the node: `bash[812]`, `/etc/passwd`, `203.0.113.7:4444`, `pipe#51`.
    pub fn label(&self) -> String {
        match self {
            Node::Process(p) => format!("{}[{}]", process_name(p), p.pid),
            Node::File(f) => f.path().to_string(),
            Node::Socket(s) => s.addr.clone(),
            Node::Pipe(p) => format!("pipe#{}", p.serial),
        }
    }
}

/// The program's short name: the exe's base name, else `comm`, else `pid`.
pub(crate) fn process_name(p: &Process) -> &str {
    if !p.exe.is_empty() {
        p.exe.rsplit('/').next().unwrap_or(&p.exe)
    } else if !p.comm.is_empty() {
        &p.comm
    } else {
        "pid"
    }
}

/// Counts and timing of a build.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GraphStats {
    /// Events pushed.
    pub events: u64,
    /// Events that made or used graph state (a handled, successful system call).
    pub used_events: u64,
    /// Events with no SYSCALL record or a call the builder does not handle.
    pub ignored_events: u64,
    /// Handled calls that failed (no information flowed).
    pub failed_events: u64,
    /// Time spent building: from the builder's creation to `finish` (so, when events are
    /// streamed from a parser, the parse is included).
    pub build: Duration,
    /// The first event's stamp.
    pub first: Option<Stamp>,
    /// The last event's stamp.
    pub last: Option<Stamp>,
}

/// The provenance graph.
#[derive(Debug, Clone, Default)]
pub struct ProvGraph {
    pub(crate) nodes: Vec<Node>,
    /// Sorted by stamp (stable: events' own order within one stamp).
    pub(crate) edges: Vec<Edge>,
    pub(crate) details: Vec<String>,
    /// Per node: some process modified it (a process → file edge).
    pub(crate) modified: Vec<bool>,
    /// `(serial, time_ns)` of every event, in push order (serial order).
    pub(crate) serials: Vec<(u64, i64)>,
    pub(crate) stats: GraphStats,
}

impl ProvGraph {
    /// Every node; a [`NodeId`] indexes this.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Every edge, sorted by stamp; an [`EdgeId`] indexes this.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// A node. Panics on an id from another graph.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// An edge. Panics on an id from another graph.
    pub fn edge(&self, id: EdgeId) -> &Edge {
        &self.edges[id.index()]
    }

    /// An edge's detail: `old → new` for a rename, `SIGKILL` for a kill, `interpreter` for an
    /// exec's second image, …
    pub fn detail(&self, edge: &Edge) -> Option<&str> {
        edge.detail
            .and_then(|d| self.details.get(d.get() as usize - 1))
            .map(String::as_str)
    }

    /// Whether some process in the log modified this node (wrote, created, renamed, unlinked,
    /// chmodded, … it). Pruning never hides such a file as "read-only".
    pub fn is_modified(&self, id: NodeId) -> bool {
        self.modified.get(id.index()).copied().unwrap_or(false)
    }

    /// Build counts and time.
    pub fn stats(&self) -> &GraphStats {
        &self.stats
    }

    /// The node's one-line label.
    pub fn label(&self, id: NodeId) -> String {
        self.node(id).label()
    }

    /// File nodes that were ever named `path` (normalised), oldest first.
    pub fn files_named(&self, path: &str) -> Vec<NodeId> {
        let path = crate::paths::normalize(path);
        self.ids()
            .filter(|&id| matches!(self.node(id), Node::File(f) if f.paths.contains(&path)))
            .collect()
    }

    /// File nodes with this inode (any device).
    pub fn files_with_inode(&self, inode: u64) -> Vec<NodeId> {
        self.ids()
            .filter(|&id| matches!(self.node(id), Node::File(f) if f.inode == Some(inode)))
            .collect()
    }

    /// Process nodes (images) of this pid, oldest first.
    pub fn processes_with_pid(&self, pid: u32) -> Vec<NodeId> {
        self.ids()
            .filter(|&id| matches!(self.node(id), Node::Process(p) if p.pid == pid))
            .collect()
    }

    /// The socket node with this address (as [`Socket::addr`] spells it).
    pub fn socket(&self, addr: &str) -> Option<NodeId> {
        self.ids()
            .find(|&id| matches!(self.node(id), Node::Socket(s) if s.addr == addr))
    }

    /// The time of the event with this serial, if it was pushed.
    pub fn time_of_serial(&self, serial: u64) -> Option<i64> {
        self.serials
            .binary_search_by_key(&serial, |&(s, _)| s)
            .ok()
            .map(|i| self.serials[i].1)
    }

    /// The process's start as a stamp.
    pub fn process_start(&self, id: NodeId) -> Option<Stamp> {
        self.node(id).as_process().map(|p| Stamp {
            time_ns: p.start_ns,
            serial: p.start_serial,
        })
    }

    fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len() as u32).map(NodeId)
    }
}

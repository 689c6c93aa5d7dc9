//! Provenance graphs from Linux Audit events, and BackTracker on them.
//!
//! - [`build`] / [`GraphBuilder`] turn [`mamori_audit::AuditEvent`]s into a [`ProvGraph`]:
//!   process images (pid + the serial of the exec or fork that started them, so pid reuse makes
//!   a new node), files (device + inode, with every name seen), sockets (by address) and pipes,
//!   joined by typed edges stamped with the event's time and serial and pointing the way
//!   information flows (exec, fork, read/write by open flags, rename, unlink, chmod, connect,
//!   accept, kill, ptrace, mmap …).
//! - [`StartSpec`] parses a detection point (`file:/tmp/x@2026-12-06T12:00:00Z`, `pid:812`,
//!   `socket:203.0.113.7:4444`) and resolves it to an [`Anchor`]: a node and a time threshold.
//! - [`backtrack`] is BackTracker (King & Chen, SOSP 2003): from the detection point back to
//!   what caused it, with per-object time thresholds; it names the entry point ([`Entry`]).
//!   [`forward`] tracks from a point (such as that entry) to everything it affected after.
//! - [`PruneRules`] leave out noise: pseudo-files, caches, unmodified system files and
//!   libraries, logging sockets.
//! - [`Report`] (JSON), [`dot`] and [`svg`] present the result to a person.
//!
//! What the graph cannot know, and how it errs (on the side of more edges):
//!
//! - With the usual rules (opens audited, reads and writes not), an open for reading is taken
//!   as a read at open time, for writing as a write; `O_RDWR` as both ([`ReadMode`]).
//! - An accept is taken as input into the accepting process. A long-lived server that accepts
//!   the attacker's connection is thus affected from then on: forward tracking from such an
//!   entry reaches every later child of the server. Forward from the first process of the
//!   chain after the server to see only the attacker's session.
//! - Descriptors inherited from before the log began are unknown (`read(0)` of a shell's
//!   stdin), and without logged `close` a descriptor keeps its object until the number is
//!   reused by a logged call.
//! - Renaming a directory does not rename the paths of files below it; a file is still found
//!   by its inode.
//! - A file whose last known name is unlinked gets a new node if its inode shows up again
//!   (inode reuse); a hard link the log never named is then taken for a new file.
//! - A child whose first logged event comes before its parent's `clone` record is linked by
//!   its `ppid`; a child whose parent died first is linked to its new parent.
//!
//! ```
//! use mamori_prov::testkit::{Proc, Sim};
//! use mamori_prov::{backtrack, build, BuildOptions, Direction, PruneRules, StartSpec};
//!
//! let mut sim = Sim::new(1_765_022_400_000_000_000);
//! let shell = Proc::new(100, 1, "/bin/bash");
//! let mut child = sim.fork(&shell, 101);
//! sim.exec(&mut child, "/usr/bin/curl", 500, &["curl", "-o", "/tmp/x", "http://example.org"]);
//! sim.create(&mut child, "/tmp/x", 600);
//!
//! let graph = build(&sim.events, &BuildOptions::default());
//! let start: StartSpec = "file:/tmp/x".parse()?;
//! let trace = backtrack(&graph, start.resolve(&graph, Direction::Backward)?, &PruneRules::default());
//! // /tmp/x ← curl ← the forked bash ← bash ← its parent, pid 1, known by pid only
//! assert_eq!(trace.nodes.len(), 5);
//! # Ok::<(), mamori_prov::Error>(())
//! ```
#![deny(missing_docs)]

mod build;
mod graph;
mod paths;
mod prune;
mod render;
mod report;
mod start;
mod syscalls;
pub mod testkit;
mod timefmt;
mod track;

pub use build::{build, BuildOptions, GraphBuilder, ReadMode};
pub use graph::{
    Edge, EdgeId, File, GraphStats, Node, NodeId, Op, Origin, Pipe, Process, ProvGraph, Socket,
    Stamp,
};
pub use paths::glob_match;
pub use prune::PruneRules;
pub use render::{dot, dot_with, escape as dot_escape, svg, svg_with, DotOptions};
pub use report::{
    ChainLink, ChainStep, Counts, ModifiedFile, Report, ReportEdge, ReportEntry, ReportNode,
    ReportProcess, ReportStart, Timings, When, MAX_CANDIDATES,
};
pub use start::{Anchor, At, Direction, StartSpec, Target};
pub use timefmt::{format_utc, parse_time};
pub use track::{backtrack, forward, group_edges, EdgeGroup, Entry, EntryKind, Reached, Trace};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A detection point that does not parse.
    #[error("bad detection point `{input}`: {reason}")]
    Start {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The detection point names nothing in the graph.
    #[error("{0}")]
    NotFound(String),
    /// The detection point names more than one thing.
    #[error("{0}")]
    Ambiguous(String),
    /// Graphviz is not installed.
    #[error("Graphviz `{program}` not found: install graphviz (apt-get install graphviz) for SVG, or write DOT and render it elsewhere")]
    GraphvizMissing {
        /// The program looked for.
        program: String,
    },
    /// Graphviz failed.
    #[error("Graphviz `{program}` failed: {message}")]
    Graphviz {
        /// The program.
        program: String,
        /// What went wrong.
        message: String,
    },
}

//! [`GraphBuilder`]: audit events in, provenance graph out, one event at a time.
//!
//! State kept while streaming: the current image of every pid, forks whose child has not shown
//! up yet, a descriptor table per pid (so `read`, `write`, `fchmod`, `mmap` … on a descriptor
//! reach the object it was opened on), the live name and inode maps of files, and sockets by
//! address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use mamori_audit::{AuditEvent, PathItem, SockAddr, Syscall};
use serde::{Deserialize, Serialize};

use crate::graph::{Edge, File, Node, NodeId, Op, Origin, Pipe, Process, ProvGraph, Socket, Stamp};
use crate::paths;
use crate::syscalls::{classify, Call};

const AT_FDCWD: i32 = -100;
const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_ACCMODE: u64 = 0o3;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_PATH: u64 = 0o10000000;
const CLONE_THREAD: u64 = 0x10000;
const PROT_EXEC: u64 = 4;
const EINPROGRESS: i64 = 115;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
/// How long after a child was first seen (by its `ppid`) its parent's clone record may still
/// arrive and be recognised as the same fork rather than a later one (pid reuse).
const LATE_FORK_WINDOW_NS: i64 = 60_000_000_000;

/// What an `open` means for information flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// The open's flags decide: `O_RDONLY` → read edge at open time, `O_WRONLY` or `O_TRUNC`
    /// → write edge, `O_RDWR` → both; a file the open created gets a create edge. Logged
    /// `read`/`write` calls add edges too. This is what most audit rule sets allow, since
    /// auditing every read and write is too costly.
    #[default]
    Auto,
    /// Opens only create files and bind descriptors; reads and writes come from logged
    /// `read`/`write`/`send`/`recv`/`mmap` calls. For logs that audit those: more precise times.
    Syscalls,
}

/// How events become edges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildOptions {
    /// See [`ReadMode`].
    pub read_mode: ReadMode,
    /// Keep reads of directories (listings). Off by default: a listing carries little of an
    /// attack and directories like `/proc` or `/tmp` become hubs.
    pub directory_reads: bool,
}

#[derive(Debug, Clone, Copy)]
struct PendingFork {
    parent: NodeId,
    parent_pid: u32,
    stamp: Stamp,
}

/// Who a new process node is, when its own SYSCALL record cannot say (a fork child first seen
/// at its exec, a signal's target).
struct ChildInfo {
    exe: String,
    comm: String,
    argv: Vec<String>,
    uid: u32,
    euid: u32,
    auid: u32,
}

/// Builds a [`ProvGraph`] from events pushed in serial order.
#[derive(Debug)]
pub struct GraphBuilder {
    opts: BuildOptions,
    g: ProvGraph,
    /// pid → its current image.
    procs: HashMap<u32, NodeId>,
    /// child pid → the fork that made it, until the child's first event.
    pending: HashMap<u32, PendingFork>,
    /// child pid → (ppid, stamp): made from its ppid before the parent's clone record arrived.
    awaiting: HashMap<u32, (u32, Stamp)>,
    /// pid → descriptor → object. Kept across exec (most descriptors survive it). Shared
    /// copy-on-write between a parent and the children it forks, so a fork costs nothing
    /// however many descriptors the parent holds.
    fds: HashMap<u32, Arc<HashMap<i32, NodeId>>>,
    /// Which process image set each (pid, descriptor) (see `fd_get_own`).
    fd_opener: HashMap<u32, HashMap<i32, NodeId>>,
    /// (device, inode) → the live file node.
    by_inode: HashMap<(u64, u64), NodeId>,
    /// Live name → file node.
    by_path: HashMap<String, NodeId>,
    /// Per node: how many live names map to it (for retiring an inode once its last name goes).
    live: Vec<u32>,
    sockets: HashMap<String, NodeId>,
    started: Instant,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder::new(BuildOptions::default())
    }
}

/// Builds a graph from events in serial order; the build time is recorded in the graph's stats.
pub fn build<'a>(
    events: impl IntoIterator<Item = &'a AuditEvent>,
    opts: &BuildOptions,
) -> ProvGraph {
    let mut b = GraphBuilder::new(opts.clone());
    for ev in events {
        b.push(ev);
    }
    b.finish()
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new(opts: BuildOptions) -> Self {
        GraphBuilder {
            opts,
            g: ProvGraph::default(),
            procs: HashMap::new(),
            pending: HashMap::new(),
            awaiting: HashMap::new(),
            fds: HashMap::new(),
            fd_opener: HashMap::new(),
            by_inode: HashMap::new(),
            by_path: HashMap::new(),
            live: Vec::new(),
            sockets: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Nodes so far.
    pub fn node_count(&self) -> usize {
        self.g.nodes.len()
    }

    /// Edges so far.
    pub fn edge_count(&self) -> usize {
        self.g.edges.len()
    }

    /// Sorts the edges by stamp and returns the graph.
    pub fn finish(mut self) -> ProvGraph {
        // Stable: edges of one event keep their order. Nearly sorted already (only late-made
        // fork edges are out of place), which the sort handles in about one pass.
        self.g.edges.sort_by_key(|e| e.stamp);
        self.g.serials.sort_by_key(|&(s, _)| s);
        let mut modified = vec![false; self.g.nodes.len()];
        for e in &self.g.edges {
            if matches!(self.g.nodes[e.src.index()], Node::Process(_))
                && !matches!(self.g.nodes[e.dst.index()], Node::Process(_))
            {
                modified[e.dst.index()] = true;
            }
        }
        self.g.modified = modified;
        self.g.stats.build = self.started.elapsed();
        self.g
    }

    /// Adds one event. Events must come in serial order.
    pub fn push(&mut self, ev: &AuditEvent) {
        let stamp = Stamp {
            time_ns: ev.time_ns,
            serial: ev.serial,
        };
        let st = &mut self.g.stats;
        st.events += 1;
        st.first = Some(st.first.map_or(stamp, |f| f.min(stamp)));
        st.last = Some(st.last.map_or(stamp, |l| l.max(stamp)));
        self.g.serials.push((ev.serial, ev.time_ns));
        let Some(sc) = ev.syscall.as_ref() else {
            self.g.stats.ignored_events += 1;
            return;
        };
        let Some(call) = classify(sc) else {
            self.g.stats.ignored_events += 1;
            return;
        };
        if call == Call::ExitGroup {
            // The process is gone: the pid's next event belongs to another process.
            self.g.stats.used_events += 1;
            self.procs.remove(&sc.pid);
            self.fds.remove(&sc.pid);
            self.fd_opener.remove(&sc.pid);
            return;
        }
        // A non-blocking connect "fails" with EINPROGRESS but connects all the same.
        let ok = sc.success || (call == Call::Connect && sc.exit == -EINPROGRESS);
        if !ok {
            self.g.stats.failed_events += 1;
            return;
        }
        self.g.stats.used_events += 1;
        let cx = Cx { ev, sc, stamp };
        match call {
            Call::Execve | Call::Execveat => self.exec(&cx, call),
            Call::Clone | Call::Fork | Call::Vfork | Call::Clone3 => self.fork(&cx, call),
            Call::Open | Call::Openat | Call::Openat2 | Call::Creat => self.open(&cx, call),
            Call::Rename | Call::Renameat | Call::Renameat2 => self.rename(&cx, call),
            Call::Unlink | Call::Unlinkat | Call::Rmdir => self.unlink(&cx, call),
            Call::Chmod
            | Call::Fchmod
            | Call::Fchmodat
            | Call::Chown
            | Call::Fchown
            | Call::Lchown
            | Call::Fchownat
            | Call::Truncate
            | Call::Ftruncate => self.attr(&cx, call),
            Call::Link | Call::Linkat | Call::Symlink | Call::Symlinkat => self.link(&cx, call),
            Call::Mknod | Call::Mknodat => self.mknod(&cx, call),
            Call::Connect => self.connect(&cx),
            Call::Accept | Call::Accept4 => self.accept(&cx),
            Call::Bind => self.bind(&cx),
            Call::Sendto | Call::Sendmsg => self.send_recv(&cx, true),
            Call::Recvfrom | Call::Recvmsg => self.send_recv(&cx, false),
            Call::Write | Call::Pwrite | Call::Writev => self.read_write(&cx, true),
            Call::Read | Call::Pread | Call::Readv => self.read_write(&cx, false),
            Call::Pipe | Call::Pipe2 | Call::Socketpair => self.pipe(&cx, call),
            Call::Close => {
                let p = sc.pid;
                self.ensure_process(&cx, false);
                if let Some(t) = self.fds.get_mut(&p) {
                    Arc::make_mut(t).remove(&(sc.args[0] as u32 as i32));
                }
            }
            Call::Dup | Call::Dup2 | Call::Dup3 => self.dup(&cx, call),
            Call::Kill | Call::Tkill | Call::Tgkill => self.kill(&cx, call),
            Call::Ptrace => self.ptrace(&cx),
            Call::Mmap => self.mmap(&cx),
            // Thread exit: the process goes on.
            Call::Exit => {}
            Call::ExitGroup => {}
        }
    }

    // ---- nodes and edges -------------------------------------------------------------------

    fn add_node(&mut self, n: Node) -> NodeId {
        let id = NodeId(self.g.nodes.len() as u32);
        self.g.nodes.push(n);
        self.live.push(0);
        id
    }

    fn add_edge(&mut self, src: NodeId, dst: NodeId, op: Op, stamp: Stamp, detail: Option<String>) {
        let detail = detail.and_then(|d| {
            self.g.details.push(d);
            NonZeroU32::new(self.g.details.len() as u32)
        });
        self.g.edges.push(Edge {
            src,
            dst,
            op,
            stamp,
            detail,
        });
    }

    fn process(&self, id: NodeId) -> Option<&Process> {
        self.g.nodes[id.index()].as_process()
    }

    // ---- processes -------------------------------------------------------------------------

    /// The node of the image that made this event, creating it (and its parent, from `ppid`)
    /// when the log has not shown it yet. `is_exec`: the SYSCALL's `exe`/`comm` are the new
    /// image's, not this one's.
    fn ensure_process(&mut self, cx: &Cx, is_exec: bool) -> NodeId {
        let sc = cx.sc;
        let pid = sc.pid;
        if let Some(pf) = self.pending.remove(&pid) {
            // The fork that made this pid. A stale entry (a thread's tid from clone3, which
            // never shows up as a pid) is told apart by the parent: a real child names it.
            // (A child whose parent died before its first logged event names its new parent
            // and is linked to that one instead: rarer than threads.)
            if sc.ppid == pf.parent_pid {
                let info = self.child_info(Some(pf.parent), cx, is_exec);
                return self.new_child(
                    pid,
                    pf.parent_pid,
                    Some(pf.parent),
                    pf.stamp,
                    info,
                    Origin::Fork,
                );
            }
        }
        if let Some(&id) = self.procs.get(&pid) {
            let Some(p) = self.process(id) else {
                return id;
            };
            if p.exe.is_empty() {
                // Known by pid only so far (a parent, a signal's target): fill it in.
                if !is_exec {
                    if let Node::Process(p) = &mut self.g.nodes[id.index()] {
                        p.exe = sc.exe.clone();
                        p.comm = sc.comm.clone();
                        p.uid = sc.uid;
                        p.euid = sc.euid;
                        p.auid = sc.auid;
                        p.ppid = sc.ppid;
                    }
                }
                return id;
            }
            if is_exec || p.exe == sc.exe {
                return id;
            }
            // Same pid, another program, no exec in between: the pid was reused by a process
            // whose fork the log did not show.
        }
        let parent = self.parent_by_pid(sc.ppid, cx.stamp);
        let info = self.child_info(parent, cx, is_exec);
        let origin = if parent.is_some() {
            Origin::Fork
        } else {
            Origin::Seen
        };
        let id = self.new_child(pid, sc.ppid, parent, cx.stamp, info, origin);
        if parent.is_some() {
            self.awaiting.insert(pid, (sc.ppid, cx.stamp));
        }
        id
    }

    /// The current node of `ppid`, or a node for it known by pid only.
    fn parent_by_pid(&mut self, ppid: u32, stamp: Stamp) -> Option<NodeId> {
        if ppid == 0 {
            return None;
        }
        if let Some(&id) = self.procs.get(&ppid) {
            return Some(id);
        }
        let id = self.add_node(Node::Process(unknown_process(ppid, stamp, String::new())));
        self.procs.insert(ppid, id);
        Some(id)
    }

    /// A new child's image: from its own SYSCALL record, unless that record is its exec (which
    /// names the new image): then a copy of its parent, as fork makes it.
    fn child_info(&self, parent: Option<NodeId>, cx: &Cx, is_exec: bool) -> ChildInfo {
        let sc = cx.sc;
        let pp = parent.and_then(|p| self.process(p));
        let (exe, comm, argv) = match pp {
            _ if !is_exec => (
                sc.exe.clone(),
                sc.comm.clone(),
                pp.filter(|pp| pp.exe == sc.exe)
                    .map(|pp| pp.argv.clone())
                    .unwrap_or_default(),
            ),
            Some(pp) => (pp.exe.clone(), pp.comm.clone(), pp.argv.clone()),
            None => (String::new(), String::new(), Vec::new()),
        };
        ChildInfo {
            exe,
            comm,
            argv,
            uid: sc.uid,
            euid: sc.euid,
            auid: sc.auid,
        }
    }

    fn new_child(
        &mut self,
        pid: u32,
        ppid: u32,
        parent: Option<NodeId>,
        stamp: Stamp,
        info: ChildInfo,
        origin: Origin,
    ) -> NodeId {
        let id = self.add_node(Node::Process(Process {
            pid,
            ppid,
            start_serial: stamp.serial,
            start_ns: stamp.time_ns,
            origin,
            exe: info.exe,
            argv: info.argv,
            comm: info.comm,
            uid: info.uid,
            euid: info.euid,
            auid: info.auid,
        }));
        if let Some(parent) = parent {
            self.add_edge(parent, id, Op::Fork, stamp, None);
        }
        // A child inherits its parent's descriptors; a reused pid starts with none known.
        let table = parent
            .and_then(|p| self.process(p))
            .and_then(|pp| self.fds.get(&pp.pid))
            .cloned();
        match table {
            Some(t) => {
                self.fds.insert(pid, t);
            }
            None => {
                self.fds.remove(&pid);
            }
        }
        self.procs.insert(pid, id);
        id
    }

    /// A signal's or ptrace's target: its current node, the child a pending fork made, or a
    /// node known by pid only.
    fn ensure_target(&mut self, pid: u32, stamp: Stamp, comm: Option<&str>) -> NodeId {
        if let Some(pf) = self.pending.remove(&pid) {
            let info = match self.process(pf.parent) {
                Some(pp) => ChildInfo {
                    exe: pp.exe.clone(),
                    comm: pp.comm.clone(),
                    argv: pp.argv.clone(),
                    uid: pp.uid,
                    euid: pp.euid,
                    auid: pp.auid,
                },
                None => ChildInfo {
                    exe: String::new(),
                    comm: comm.unwrap_or_default().to_string(),
                    argv: Vec::new(),
                    uid: u32::MAX,
                    euid: u32::MAX,
                    auid: u32::MAX,
                },
            };
            return self.new_child(
                pid,
                pf.parent_pid,
                Some(pf.parent),
                pf.stamp,
                info,
                Origin::Fork,
            );
        }
        if let Some(&id) = self.procs.get(&pid) {
            return id;
        }
        let id = self.add_node(Node::Process(unknown_process(
            pid,
            stamp,
            comm.unwrap_or_default().to_string(),
        )));
        self.procs.insert(pid, id);
        id
    }

    fn exec(&mut self, cx: &Cx, call: Call) {
        let (ev, sc) = (cx.ev, cx.sc);
        let old = self.ensure_process(cx, true);
        let argv = match (&ev.execve, &ev.proctitle) {
            (Some(e), _) => e.argv.clone(),
            (None, Some(t)) => t.split(' ').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let new = self.add_node(Node::Process(Process {
            pid: sc.pid,
            ppid: sc.ppid,
            start_serial: cx.stamp.serial,
            start_ns: cx.stamp.time_ns,
            origin: Origin::Exec,
            exe: sc.exe.clone(),
            argv,
            comm: sc.comm.clone(),
            uid: sc.uid,
            euid: sc.euid,
            auid: sc.auid,
        }));
        // Old image → new image keeps parent → child → exec connected.
        self.add_edge(old, new, Op::Exec, cx.stamp, None);
        let dirfd = (call == Call::Execveat).then_some(sc.args[0]);
        let base = self.base_dir(cx, dirfd);
        // item 0 is the program; later items are the script's interpreter and/or ld.so.
        let mut first = true;
        for item in ev.paths.iter().filter(|i| !is_parent(i)) {
            let path = item_path(item, base.as_deref());
            if let Some(f) = self.file_for(item, path) {
                let detail = (!first).then(|| "interpreter".to_string());
                self.add_edge(f, new, Op::Exec, cx.stamp, detail);
            }
            first = false;
        }
        self.procs.insert(sc.pid, new);
    }

    fn fork(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        // A thread shares its process: audit logs its events under the process's pid.
        if call == Call::Clone && sc.args[0] & CLONE_THREAD != 0 {
            return;
        }
        let parent = self.ensure_process(cx, false);
        if sc.exit <= 0 || sc.exit > i64::from(u32::MAX) {
            return;
        }
        let child = sc.exit as u32;
        // The child may have run (and been logged, found by its ppid) before this record:
        // the clone's SYSCALL record is written when the call returns in the parent.
        if let Some(&(ppid, seen)) = self.awaiting.get(&child) {
            self.awaiting.remove(&child);
            if ppid == sc.pid && cx.stamp.time_ns - seen.time_ns <= LATE_FORK_WINDOW_NS {
                return;
            }
        }
        // The child node is made at the child's first event (or when something targets it):
        // clone3 does not say whether it made a thread, and a thread never shows up as a pid.
        self.pending.insert(
            child,
            PendingFork {
                parent,
                parent_pid: sc.pid,
                stamp: cx.stamp,
            },
        );
    }

    // ---- files -----------------------------------------------------------------------------

    /// The directory a relative name is relative to: the CWD record, or the directory a
    /// `*at` call's descriptor was opened on.
    fn base_dir(&self, cx: &Cx, dirfd: Option<u64>) -> Option<String> {
        match dirfd.map(|a| a as u32 as i32) {
            None | Some(AT_FDCWD) => cx.ev.cwd.clone(),
            Some(fd) => self
                .fd_get(cx.sc.pid, fd)
                .and_then(|n| self.g.nodes[n.index()].as_file())
                .and_then(|f| f.paths.last().cloned()),
        }
    }

    /// The file node a PATH item names: by device and inode when logged, else by its live name.
    fn file_for(&mut self, item: &PathItem, path: Option<String>) -> Option<NodeId> {
        if let Some(inode) = item.inode {
            let dev = item.dev.as_deref().and_then(parse_dev).unwrap_or(u64::MAX);
            let id = match self.by_inode.get(&(dev, inode)) {
                Some(&id) => id,
                None => {
                    let id = self.add_node(Node::File(File {
                        dev: item.dev.clone(),
                        inode: Some(inode),
                        paths: Vec::new(),
                    }));
                    self.by_inode.insert((dev, inode), id);
                    id
                }
            };
            if let Some(p) = path {
                self.add_name(id, p);
            }
            return Some(id);
        }
        let p = path?;
        if let Some(&id) = self.by_path.get(&p) {
            return Some(id);
        }
        let id = self.add_node(Node::File(File {
            dev: None,
            inode: None,
            paths: Vec::new(),
        }));
        self.add_name(id, p);
        Some(id)
    }

    fn add_name(&mut self, id: NodeId, path: String) {
        if let Node::File(f) = &mut self.g.nodes[id.index()] {
            if !f.paths.iter().rev().any(|p| *p == path) {
                f.paths.push(path.clone());
            }
        }
        match self.by_path.get_mut(&path) {
            Some(cur) if *cur == id => {}
            Some(cur) => {
                let old = std::mem::replace(cur, id);
                self.live[old.index()] = self.live[old.index()].saturating_sub(1);
                self.live[id.index()] += 1;
            }
            None => {
                self.by_path.insert(path, id);
                self.live[id.index()] += 1;
            }
        }
    }

    /// A name went away (unlink, rename's old name, a replaced target). When the file has no
    /// live name left its inode is retired, so a new file that reuses the inode gets a new node.
    fn remove_name(&mut self, id: NodeId, path: &str) {
        if self.by_path.get(path) == Some(&id) {
            self.by_path.remove(path);
            self.live[id.index()] = self.live[id.index()].saturating_sub(1);
        }
        if self.live[id.index()] == 0 {
            if let Node::File(File {
                dev,
                inode: Some(inode),
                ..
            }) = &self.g.nodes[id.index()]
            {
                let key = (
                    dev.as_deref().and_then(parse_dev).unwrap_or(u64::MAX),
                    *inode,
                );
                if self.by_inode.get(&key) == Some(&id) {
                    self.by_inode.remove(&key);
                }
            }
        }
    }

    fn fd_get(&self, pid: u32, fd: i32) -> Option<NodeId> {
        self.fds.get(&pid).and_then(|t| t.get(&fd)).copied()
    }

    fn fd_set(&mut self, pid: u32, fd: i64, node: NodeId) {
        if (0..=i64::from(i32::MAX)).contains(&fd) {
            Arc::make_mut(self.fds.entry(pid).or_default()).insert(fd as i32, node);
            if let Some(&image) = self.procs.get(&pid) {
                self.fd_opener
                    .entry(pid)
                    .or_default()
                    .insert(fd as i32, image);
            }
        }
    }

    /// The object behind a descriptor only if this very process image opened it. With the usual
    /// rules most opens (libraries, `/etc`) and every `close`, `dup` and `fcntl` go unlogged, so
    /// an inherited or older number has likely been closed and reused by an unlogged open: the
    /// dynamic loader's `mmap` of libc on descriptor 3 would otherwise be taken for the script
    /// or socket a parent once had on 3.
    fn fd_get_own(&self, pid: u32, fd: i32) -> Option<NodeId> {
        let image = self.procs.get(&pid)?;
        (self.fd_opener.get(&pid).and_then(|t| t.get(&fd)) == Some(image))
            .then(|| self.fd_get(pid, fd))
            .flatten()
    }

    fn open(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let (flags, dirfd) = match call {
            Call::Open => (Some(sc.args[1]), None),
            Call::Openat => (Some(sc.args[2]), Some(sc.args[0])),
            // openat2's flags are in a struct; the OPENAT2 record carries them (kernel 5.16+).
            Call::Openat2 => (
                cx.ev
                    .record("OPENAT2")
                    .and_then(|r| r.get("oflag"))
                    .and_then(parse_c_number),
                Some(sc.args[0]),
            ),
            _ => (Some(O_CREAT | O_WRONLY | O_TRUNC), None),
        };
        let Some(item) = target_item(cx.ev) else {
            return;
        };
        let base = self.base_dir(cx, dirfd);
        let path = item_path(item, base.as_deref());
        let Some(f) = self.file_for(item, path) else {
            return;
        };
        self.fd_set(sc.pid, sc.exit, f);
        // Unknown flags (openat2 without its record) are taken as a read: the common case.
        let flags = flags.unwrap_or(0);
        if flags & O_PATH != 0 {
            return;
        }
        let created = item.nametype.eq_ignore_ascii_case("CREATE");
        if created {
            self.add_edge(p, f, Op::Create, cx.stamp, None);
        }
        if self.opts.read_mode == ReadMode::Syscalls {
            return;
        }
        let acc = flags & O_ACCMODE;
        if !created && (acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0) {
            self.add_edge(p, f, Op::Write, cx.stamp, None);
        }
        // A file the open created is empty: nothing to read from it yet.
        if !created && (acc == 0 || acc == O_RDWR) && (self.opts.directory_reads || !is_dir(item)) {
            self.add_edge(f, p, Op::Read, cx.stamp, None);
        }
    }

    fn rename(&mut self, cx: &Cx, call: Call) {
        let (ev, sc) = (cx.ev, cx.sc);
        let p = self.ensure_process(cx, false);
        let (old_dir, new_dir) = match call {
            Call::Rename => (None, None),
            _ => (Some(sc.args[0]), Some(sc.args[2])),
        };
        let old_base = self.base_dir(cx, old_dir);
        let new_base = self.base_dir(cx, new_dir);
        let deletes = named_if_any(ev.paths.iter().filter(|i| has_type(i, "DELETE")).collect());
        let Some(created) = ev.paths.iter().find(|i| has_type(i, "CREATE")) else {
            return;
        };
        // PATH items: PARENT, PARENT, DELETE (old name), DELETE (replaced target, if any),
        // CREATE (new name). The moved file is the DELETE with the CREATE's inode.
        let moved = deletes
            .iter()
            .position(|d| d.inode.is_some() && d.inode == created.inode)
            .or(if deletes.is_empty() { None } else { Some(0) });
        let new_path = item_path(created, new_base.as_deref());
        let old_path = moved.and_then(|i| item_path(deletes[i], old_base.as_deref()));
        // The replaced target first, so its name is free for the moved file.
        for (i, d) in deletes.iter().enumerate() {
            if Some(i) == moved {
                continue;
            }
            let path = item_path(d, new_base.as_deref());
            if let Some(t) = self.file_for(d, path.clone()) {
                let detail = old_path.as_ref().map(|o| format!("replaced by {o}"));
                self.add_edge(p, t, Op::Unlink, cx.stamp, detail);
                if let Some(path) = path {
                    self.remove_name(t, &path);
                }
            }
        }
        let f = match moved {
            Some(i) => self.file_for(deletes[i], old_path.clone()),
            None => self.file_for(created, None),
        };
        let Some(f) = f else {
            return;
        };
        if let Some(np) = &new_path {
            self.add_name(f, np.clone());
        }
        let detail = match (&old_path, &new_path) {
            (Some(o), Some(n)) => Some(format!("{o} → {n}")),
            (None, Some(n)) => Some(format!("→ {n}")),
            _ => None,
        };
        self.add_edge(p, f, Op::Rename, cx.stamp, detail);
        if let Some(o) = &old_path {
            if new_path.as_deref() != Some(o.as_str()) {
                self.remove_name(f, o);
            }
        }
    }

    fn unlink(&mut self, cx: &Cx, call: Call) {
        let (ev, sc) = (cx.ev, cx.sc);
        let p = self.ensure_process(cx, false);
        let dirfd = (call == Call::Unlinkat).then_some(sc.args[0]);
        let base = self.base_dir(cx, dirfd);
        let mut items = named_if_any(ev.paths.iter().filter(|i| has_type(i, "DELETE")).collect());
        if items.is_empty() {
            items.extend(target_item(ev));
        }
        for item in items {
            let path = item_path(item, base.as_deref());
            if let Some(f) = self.file_for(item, path.clone()) {
                self.add_edge(p, f, Op::Unlink, cx.stamp, None);
                if let Some(path) = path {
                    self.remove_name(f, &path);
                }
            }
        }
    }

    fn attr(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let a = sc.args;
        let (op, detail) = match call {
            Call::Chmod | Call::Fchmod => (Op::Chmod, Some(format!("mode {:04o}", a[1] & 0o7777))),
            Call::Fchmodat => (Op::Chmod, Some(format!("mode {:04o}", a[2] & 0o7777))),
            Call::Chown | Call::Fchown | Call::Lchown => (Op::Chown, Some(owner(a[1], a[2]))),
            Call::Fchownat => (Op::Chown, Some(owner(a[2], a[3]))),
            _ => (Op::Truncate, None),
        };
        let f = match call {
            Call::Fchmod | Call::Fchown | Call::Ftruncate => match target_item(cx.ev) {
                Some(item) => {
                    let base = self.base_dir(cx, None);
                    let path = item_path(item, base.as_deref());
                    self.file_for(item, path)
                }
                None => self.fd_get(sc.pid, a[0] as u32 as i32),
            },
            _ => {
                let dirfd = matches!(call, Call::Fchmodat | Call::Fchownat).then_some(a[0]);
                let base = self.base_dir(cx, dirfd);
                match target_item(cx.ev) {
                    Some(item) => {
                        let path = item_path(item, base.as_deref());
                        self.file_for(item, path)
                    }
                    None => None,
                }
            }
        };
        if let Some(f) = f {
            self.add_edge(p, f, op, cx.stamp, detail);
        }
    }

    fn link(&mut self, cx: &Cx, call: Call) {
        let (ev, sc) = (cx.ev, cx.sc);
        let p = self.ensure_process(cx, false);
        let Some(created) = ev.paths.iter().find(|i| has_type(i, "CREATE")) else {
            return;
        };
        match call {
            Call::Link | Call::Linkat => {
                let (old_dir, new_dir) = match call {
                    Call::Linkat => (Some(sc.args[0]), Some(sc.args[2])),
                    _ => (None, None),
                };
                let old_base = self.base_dir(cx, old_dir);
                let new_base = self.base_dir(cx, new_dir);
                let new_path = item_path(created, new_base.as_deref());
                // The existing file: the item that is neither a parent nor the new name.
                let old = ev
                    .paths
                    .iter()
                    .find(|i| !is_parent(i) && !has_type(i, "CREATE"));
                let old_path = old.and_then(|o| item_path(o, old_base.as_deref()));
                let f = match old {
                    Some(o) => self.file_for(o, old_path.clone()),
                    None => None,
                };
                let Some(f) = f.or_else(|| self.file_for(created, None)) else {
                    return;
                };
                if let Some(np) = &new_path {
                    self.add_name(f, np.clone());
                }
                let detail = match (&old_path, &new_path) {
                    (Some(o), Some(n)) => Some(format!("{o} ⇒ {n}")),
                    (_, Some(n)) => Some(format!("⇒ {n}")),
                    _ => None,
                };
                self.add_edge(p, f, Op::Link, cx.stamp, detail);
            }
            _ => {
                let new_dir = (call == Call::Symlinkat).then_some(sc.args[1]);
                let base = self.base_dir(cx, new_dir);
                let path = item_path(created, base.as_deref());
                if let Some(f) = self.file_for(created, path) {
                    self.add_edge(p, f, Op::Link, cx.stamp, Some("symlink".into()));
                }
            }
        }
    }

    fn mknod(&mut self, cx: &Cx, call: Call) {
        let p = self.ensure_process(cx, false);
        let dirfd = (call == Call::Mknodat).then_some(cx.sc.args[0]);
        let base = self.base_dir(cx, dirfd);
        let Some(item) = cx
            .ev
            .paths
            .iter()
            .find(|i| has_type(i, "CREATE"))
            .or(target_item(cx.ev))
        else {
            return;
        };
        let path = item_path(item, base.as_deref());
        if let Some(f) = self.file_for(item, path) {
            self.add_edge(p, f, Op::Create, cx.stamp, None);
        }
    }

    fn mmap(&mut self, cx: &Cx) {
        let sc = cx.sc;
        // The MMAP record has the descriptor (a4 is not in the SYSCALL record's a0..a3).
        let fd = cx
            .ev
            .record("MMAP")
            .and_then(|r| r.get("fd"))
            .and_then(|v| {
                v.parse::<i64>()
                    .ok()
                    .or_else(|| parse_c_number(v).map(|n| n as u32 as i32 as i64))
            });
        let Some(fd) = fd.filter(|&fd| fd >= 0 && fd != i64::from(u32::MAX)) else {
            return; // anonymous mapping
        };
        let p = self.ensure_process(cx, false);
        let f = match cx
            .ev
            .paths
            .iter()
            .find(|i| !is_parent(i) && i.inode.is_some())
        {
            Some(item) => {
                let base = self.base_dir(cx, None);
                let path = item_path(item, base.as_deref());
                self.file_for(item, path)
            }
            None => self.fd_get_own(sc.pid, fd as i32),
        };
        let Some(f) = f else {
            return;
        };
        let op = if sc.args[2] & PROT_EXEC != 0 {
            Op::MmapExec
        } else {
            Op::Read
        };
        self.add_edge(f, p, op, cx.stamp, None);
    }

    // ---- descriptors, pipes, sockets -------------------------------------------------------

    fn read_write(&mut self, cx: &Cx, write: bool) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let Some(obj) = self.fd_get(sc.pid, sc.args[0] as u32 as i32) else {
            return;
        };
        if write {
            self.add_edge(p, obj, Op::Write, cx.stamp, None);
        } else {
            self.add_edge(obj, p, Op::Read, cx.stamp, None);
        }
    }

    fn dup(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        self.ensure_process(cx, false);
        let (from, to) = match call {
            Call::Dup => (sc.args[0], sc.exit as u64),
            _ => (sc.args[0], sc.args[1]),
        };
        let to = to as u32 as i32;
        match self.fd_get(sc.pid, from as u32 as i32) {
            Some(n) => self.fd_set(sc.pid, i64::from(to), n),
            None => {
                if let Some(t) = self.fds.get_mut(&sc.pid) {
                    Arc::make_mut(t).remove(&to);
                }
            }
        }
    }

    fn pipe(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let node = if call == Call::Socketpair {
            self.add_node(Node::Socket(Socket {
                addr: format!("socketpair:{}", cx.stamp.serial),
                local: true,
            }))
        } else {
            self.add_node(Node::Pipe(Pipe {
                serial: cx.stamp.serial,
                pid: sc.pid,
            }))
        };
        self.add_edge(p, node, Op::Pipe, cx.stamp, None);
        if let Some(r) = cx.ev.record("FD_PAIR") {
            for key in ["fd0", "fd1"] {
                if let Some(fd) = r.get(key).and_then(|v| v.parse::<i64>().ok()) {
                    self.fd_set(sc.pid, fd, node);
                }
            }
        }
    }

    fn socket_node(&mut self, key: String, local: bool) -> NodeId {
        if let Some(&id) = self.sockets.get(&key) {
            return id;
        }
        let id = self.add_node(Node::Socket(Socket {
            addr: key.clone(),
            local,
        }));
        self.sockets.insert(key, id);
        id
    }

    fn connect(&mut self, cx: &Cx) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let Some((key, local)) = cx.ev.sockaddr.as_ref().and_then(socket_key) else {
            return;
        };
        let s = self.socket_node(key, local);
        self.fd_set(sc.pid, sc.args[0] as u32 as i32 as i64, s);
        self.add_edge(p, s, Op::Connect, cx.stamp, None);
        self.add_edge(s, p, Op::Connect, cx.stamp, None);
    }

    /// The peer of an accept or a datagram: a network peer by its address; a local peer (an
    /// ephemeral loopback port, an unnamed unix socket) by the local socket it reached, which
    /// is where local clients' connects meet it.
    fn peer_or_local(&mut self, cx: &Cx, fd: u64) -> Option<NodeId> {
        let local_sock = self.fd_get(cx.sc.pid, fd as u32 as i32);
        match cx.ev.sockaddr.as_ref().and_then(socket_key) {
            Some((key, false)) => Some(self.socket_node(key, false)),
            Some((key, true)) => Some(match local_sock {
                Some(s) => s,
                None => self.socket_node(key, true),
            }),
            None => local_sock,
        }
    }

    fn accept(&mut self, cx: &Cx) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let Some(s) = self.peer_or_local(cx, sc.args[0]) else {
            return;
        };
        self.fd_set(sc.pid, sc.exit, s);
        self.add_edge(s, p, Op::Accept, cx.stamp, None);
        self.add_edge(p, s, Op::Accept, cx.stamp, None);
    }

    fn bind(&mut self, cx: &Cx) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let Some((key, local)) = cx.ev.sockaddr.as_ref().and_then(socket_key) else {
            return;
        };
        let s = self.socket_node(key, local);
        self.fd_set(sc.pid, sc.args[0] as u32 as i32 as i64, s);
        self.add_edge(p, s, Op::Bind, cx.stamp, None);
    }

    fn send_recv(&mut self, cx: &Cx, send: bool) {
        let p = self.ensure_process(cx, false);
        let Some(s) = self.peer_or_local(cx, cx.sc.args[0]) else {
            return;
        };
        if send {
            self.add_edge(p, s, Op::Send, cx.stamp, None);
        } else {
            self.add_edge(s, p, Op::Recv, cx.stamp, None);
        }
    }

    // ---- signals and tracing ---------------------------------------------------------------

    /// The OBJ_PID records' targets (`opid`, `ocomm`), one per signalled process.
    fn obj_pids(ev: &AuditEvent) -> Vec<(u32, Option<String>)> {
        ev.records
            .iter()
            .filter(|r| r.kind == "OBJ_PID")
            .filter_map(|r| {
                let pid = r.get("opid")?.parse::<u32>().ok()?;
                Some((pid, r.get("ocomm").map(str::to_string)))
            })
            .collect()
    }

    fn kill(&mut self, cx: &Cx, call: Call) {
        let sc = cx.sc;
        let sig = match call {
            Call::Tgkill => sc.args[2],
            _ => sc.args[1],
        } as u32 as i32;
        // Signal 0 only probes whether the target exists.
        if sig == 0 {
            return;
        }
        let p = self.ensure_process(cx, false);
        let mut targets = Self::obj_pids(cx.ev);
        if targets.is_empty() {
            let t = sc.args[0] as u32 as i32;
            if t > 0 {
                targets.push((t as u32, None));
            }
        }
        for (pid, comm) in targets {
            let t = self.ensure_target(pid, cx.stamp, comm.as_deref());
            if t != p {
                self.add_edge(p, t, Op::Kill, cx.stamp, Some(signal_name(sig)));
            }
        }
    }

    fn ptrace(&mut self, cx: &Cx) {
        let sc = cx.sc;
        let p = self.ensure_process(cx, false);
        let req = sc.args[0];
        if req == 0 {
            // PTRACE_TRACEME: the parent becomes the tracer.
            if let Some(&parent) = self.procs.get(&sc.ppid) {
                self.add_edge(parent, p, Op::Ptrace, cx.stamp, Some("TRACEME".into()));
            }
            return;
        }
        let target = Self::obj_pids(cx.ev).into_iter().next().or_else(|| {
            let t = sc.args[1] as u32 as i32;
            (t > 0).then_some((t as u32, None))
        });
        if let Some((pid, comm)) = target {
            let t = self.ensure_target(pid, cx.stamp, comm.as_deref());
            if t != p {
                self.add_edge(p, t, Op::Ptrace, cx.stamp, Some(ptrace_request(req)));
            }
        }
    }
}

/// One event being handled.
struct Cx<'a> {
    ev: &'a AuditEvent,
    sc: &'a Syscall,
    stamp: Stamp,
}

fn unknown_process(pid: u32, stamp: Stamp, comm: String) -> Process {
    Process {
        pid,
        ppid: 0,
        start_serial: stamp.serial,
        start_ns: stamp.time_ns,
        origin: Origin::Seen,
        exe: String::new(),
        argv: Vec::new(),
        comm,
        uid: u32::MAX,
        euid: u32::MAX,
        auid: u32::MAX,
    }
}

fn has_type(i: &PathItem, t: &str) -> bool {
    i.nametype.eq_ignore_ascii_case(t)
}

fn is_parent(i: &PathItem) -> bool {
    has_type(i, "PARENT")
}

fn is_dir(i: &PathItem) -> bool {
    i.mode.is_some_and(|m| m & S_IFMT == S_IFDIR)
}

/// The item a one-path call acted on: the last that is not a PARENT (opens log PARENT then
/// NORMAL or CREATE), named ones first. On overlayfs (a container's root) a write that copies
/// a file up to the upper layer appends nameless items for the directories and files it made
/// there (`name=(null)`, CREATE/DELETE/PARENT): they are not what the call named.
fn target_item(ev: &AuditEvent) -> Option<&PathItem> {
    let mut items = ev.paths.iter().rev().filter(|i| !is_parent(i));
    let last = items.clone().next();
    items.find(|i| has_name(i)).or(last)
}

fn has_name(i: &PathItem) -> bool {
    i.name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != "(null)")
}

/// The named items, when there are any (see [`target_item`] for the nameless ones).
fn named_if_any(items: Vec<&PathItem>) -> Vec<&PathItem> {
    if items.iter().any(|i| has_name(i)) {
        items.into_iter().filter(|i| has_name(i)).collect()
    } else {
        items
    }
}

fn item_path(item: &PathItem, base: Option<&str>) -> Option<String> {
    item.name
        .as_deref()
        .filter(|n| !n.is_empty() && *n != "(null)")
        .map(|n| paths::resolve(n, base))
}

/// `fd:01` → one number (major, minor).
fn parse_dev(dev: &str) -> Option<u64> {
    let (maj, min) = dev.split_once(':')?;
    let maj = u64::from_str_radix(maj, 16).ok()?;
    let min = u64::from_str_radix(min, 16).ok()?;
    Some(maj << 32 | min)
}

/// A number as C prints it: `0x1f` hex, `0755` octal, `42` decimal.
fn parse_c_number(v: &str) -> Option<u64> {
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    }
}

fn owner(uid: u64, gid: u64) -> String {
    let part = |v: u64| {
        let v = v as u32;
        if v == u32::MAX {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    format!("owner {}:{}", part(uid), part(gid))
}

/// A socket's node key and whether it is local (not a network peer). Loopback and wildcard
/// addresses fold into `localhost:PORT`, IPv4-mapped IPv6 into IPv4; `None` for addresses that
/// name nothing (AF_UNSPEC, an unnamed unix socket).
pub(crate) fn socket_key(sa: &SockAddr) -> Option<(String, bool)> {
    fn v4(ip: Ipv4Addr, port: u16) -> (String, bool) {
        if ip.is_loopback() || ip.is_unspecified() {
            (format!("localhost:{port}"), true)
        } else {
            (format!("{ip}:{port}"), false)
        }
    }
    match sa {
        SockAddr::Inet { addr, port } => Some(match addr.parse::<Ipv4Addr>() {
            Ok(ip) => v4(ip, *port),
            Err(_) => (format!("{addr}:{port}"), false),
        }),
        SockAddr::Inet6 { addr, port } => Some(match addr.parse::<Ipv6Addr>() {
            Ok(ip) => match ip.to_ipv4_mapped() {
                Some(v) => v4(v, *port),
                None if ip.is_loopback() || ip.is_unspecified() => {
                    (format!("localhost:{port}"), true)
                }
                None => (format!("[{ip}]:{port}"), false),
            },
            Err(_) => (format!("[{addr}]:{port}"), false),
        }),
        SockAddr::Unix { path } if path.is_empty() => None,
        SockAddr::Unix { path } => Some((format!("unix:{path}"), true)),
        SockAddr::Netlink { pid } => Some((format!("netlink:{pid}"), true)),
        SockAddr::Other { number: 0, .. } => None,
        // Unknown families (Bluetooth, CAN, …) may well reach outside the host.
        SockAddr::Other { number, raw } => Some((format!("family{number}:{raw}"), false)),
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        12 => "SIGUSR2",
        15 => "SIGTERM",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

fn ptrace_request(req: u64) -> String {
    let name = match req {
        4 => "POKETEXT",
        5 => "POKEDATA",
        6 => "POKEUSER",
        13 => "SETREGS",
        16 => "ATTACH",
        17 => "DETACH",
        0x4206 => "SEIZE",
        _ => return format!("request {req}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_keys_fold_local_addresses() {
        let inet = |a: &str, p| SockAddr::Inet {
            addr: a.into(),
            port: p,
        };
        assert_eq!(
            socket_key(&inet("127.0.0.1", 80)),
            Some(("localhost:80".into(), true))
        );
        assert_eq!(
            socket_key(&inet("0.0.0.0", 80)),
            Some(("localhost:80".into(), true))
        );
        assert_eq!(
            socket_key(&inet("203.0.113.7", 4444)),
            Some(("203.0.113.7:4444".into(), false))
        );
        let v6 = |a: &str| SockAddr::Inet6 {
            addr: a.into(),
            port: 22,
        };
        assert_eq!(socket_key(&v6("::1")), Some(("localhost:22".into(), true)));
        assert_eq!(
            socket_key(&v6("::ffff:198.51.100.1")),
            Some(("198.51.100.1:22".into(), false))
        );
        assert_eq!(
            socket_key(&v6("2001:db8::1")),
            Some(("[2001:db8::1]:22".into(), false))
        );
        assert_eq!(
            socket_key(&SockAddr::Unix {
                path: String::new()
            }),
            None
        );
        assert_eq!(
            socket_key(&SockAddr::Other {
                number: 0,
                raw: "0000".into()
            }),
            None
        );
    }

    #[test]
    fn numbers_as_c_prints_them() {
        assert_eq!(parse_c_number("0100101"), Some(0o100101));
        assert_eq!(parse_c_number("0x41"), Some(0x41));
        assert_eq!(parse_c_number("0"), Some(0));
        assert_eq!(parse_c_number("12"), Some(12));
        assert_eq!(parse_dev("fd:01"), Some(0xfd << 32 | 1));
        assert_eq!(parse_dev("nope"), None);
    }
}

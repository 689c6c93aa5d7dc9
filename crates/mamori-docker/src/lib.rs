//! Container attribution for mamori: which Docker container a captured event belongs to.
//!
//! The eBPF capture sees a cgroup id (`bpf_get_current_cgroup_id()`, the inode of the process's
//! cgroup-v2 directory) and a tgid per event. This crate connects them to containers:
//!
//! - [`DockerClient`] talks to the Docker Engine API (via `bollard`): the running containers,
//!   one container's [`ContainerInfo`], and a stream of [`ContainerEvent`]s (start / exit);
//! - [`ContainerDirectory`] is the synchronous, thread-safe lookup the capture uses per event
//!   (cgroup id → container), kept current by [`follow`];
//! - the cgroup helpers ([`cgroup_id_of_pid`], [`container_id_of_pid`], …) read `/proc` only.
//!
//! Process ids and cgroup ids are only meaningful when the engine runs on this host, in the same
//! PID namespace (not with a remote `DOCKER_HOST`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use mamori_docker::{follow, ContainerDirectory, DockerClient};
//!
//! # async fn demo() -> Result<(), mamori_docker::Error> {
//! let dir = Arc::new(ContainerDirectory::new());
//! let client = DockerClient::connect().await?;
//! let watched = dir.clone();
//! let follower = tokio::spawn(follow(client, dir.clone(), move |event| {
//!     println!("{event:?}");
//!     // Resynchronise the BPF map of monitored cgroups with this set.
//!     let _cgroup_ids = watched.cgroup_ids();
//! }));
//! // Per event, without async:
//! if let Some(container) = dir.by_cgroup(4321) {
//!     println!("event from {} ({})", container.name, container.image);
//! }
//! follower.abort(); // stops following
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod cgroup;

use std::collections::HashMap;
use std::env;
use std::pin::pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    EventsOptions, ListContainersOptions, LogsOptions, RestartContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

pub use cgroup::{
    cgroup_id_of_pid, cgroup_path_of_pid, container_id_from_cgroup_path, container_id_of_pid,
    processes_in_cgroup_of,
};

/// The local engine's socket, used when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// What mamori needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The full 64-hex container id.
    pub id: String,
    /// The container name, without Docker's leading `/`.
    pub name: String,
    /// The image as the user named it (`Config.Image`, e.g. `mamori-bb` or `nginx:1.27`).
    pub image: String,
    /// The image id (`sha256:…`).
    pub image_id: String,
    /// The main process (`State.Pid`) if the container is running.
    pub pid: Option<u32>,
    /// The cgroup id of the main process (see [`cgroup_id_of_pid`]), if it could be read.
    pub cgroup_id: Option<u64>,
}

/// A change in the set of running containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// A container started (or restarted); its info was inspected right after the `start` event.
    Started(ContainerInfo),
    /// A container's main process exited (Docker's `die` event).
    Stopped {
        /// The full container id.
        id: String,
    },
}

/// Why talking to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be reached or did not answer the ping.
    #[error(
        "cannot reach the Docker engine at {host} (is dockerd running? DOCKER_HOST selects \
         another engine): {source}"
    )]
    Unreachable {
        /// The `DOCKER_HOST` used, e.g. `unix:///var/run/docker.sock`.
        host: String,
        /// What the client reported.
        #[source]
        source: BollardError,
    },
    /// No container has this name or id.
    #[error("no container named {0}")]
    NoSuchContainer(String),
    /// Any other engine error.
    #[error("Docker engine: {0}")]
    Engine(#[from] BollardError),
    /// The engine closed the event stream (e.g. dockerd restarted).
    #[error("the Docker event stream ended")]
    EventsEnded,
}

/// An engine reply, with 404 named as the missing container.
fn not_found_as<T>(name: &str, r: Result<T, BollardError>) -> Result<T, Error> {
    match r {
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(Error::NoSuchContainer(name.to_string())),
        other => Ok(other?),
    }
}

/// A connection to the Docker Engine API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerClient {
    docker: Docker,
}

impl DockerClient {
    /// Connects to `DOCKER_HOST` (`unix://…`, `tcp://…`), else to [`DEFAULT_DOCKER_HOST`], and
    /// pings the engine, so an unreachable engine is reported here, naming the socket.
    pub async fn connect() -> Result<Self, Error> {
        let host = env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let unreachable = |source| Error::Unreachable {
            host: host.clone(),
            source,
        };
        let docker = Docker::connect_with_host(&host).map_err(unreachable)?;
        // bollard asks for its newest API version, which older engines refuse (dockerd 20.10
        // speaks 1.41); negotiating also serves as the reachability check.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// The running containers. One that exits while being listed is left out.
    pub async fn running(&self) -> Result<Vec<ContainerInfo>, Error> {
        let mut running = Vec::new();
        // Without options the engine lists running containers only.
        for summary in self.docker.list_containers(None).await? {
            let Some(id) = summary.id else { continue };
            match self.inspect(&id).await {
                Ok(info) if info.pid.is_some() => running.push(info),
                Ok(_) | Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(running)
    }

    /// One container, by name or (full or unique prefix of its) id.
    pub async fn inspect(&self, name_or_id: &str) -> Result<ContainerInfo, Error> {
        let c = match self.docker.inspect_container(name_or_id, None).await {
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Err(Error::NoSuchContainer(name_or_id.to_string())),
            other => other?,
        };
        let pid = c
            .state
            .as_ref()
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0);
        // Unreadable (the process just exited, or no cgroup v2): the container is still named by
        // id; the capture just cannot key it by cgroup.
        let cgroup_id = pid.and_then(|p| cgroup_id_of_pid(p).ok().flatten());
        let name = c.name.unwrap_or_default();
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: name.strip_prefix('/').unwrap_or(&name).to_string(),
            image: c.config.and_then(|cfg| cfg.image).unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            pid,
            cgroup_id,
        })
    }

    /// Restarts a container (stopped or running), giving its processes `stop_timeout` seconds
    /// between SIGTERM and SIGKILL; returns when the engine reports it started again.
    pub async fn restart(&self, name_or_id: &str, stop_timeout: u32) -> Result<(), Error> {
        let options = RestartContainerOptions {
            signal: None,
            t: Some(i32::try_from(stop_timeout).unwrap_or(i32::MAX)),
        };
        not_found_as(
            name_or_id,
            self.docker
                .restart_container(name_or_id, Some(options))
                .await,
        )
    }

    /// Freezes every process of a container (the cgroup freezer); [`Self::unpause`] thaws it.
    pub async fn pause(&self, name_or_id: &str) -> Result<(), Error> {
        not_found_as(name_or_id, self.docker.pause_container(name_or_id).await)
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, name_or_id: &str) -> Result<(), Error> {
        not_found_as(name_or_id, self.docker.unpause_container(name_or_id).await)
    }

    /// The last `lines` lines of a container's stdout and stderr, oldest first, each with the
    /// engine's timestamp.
    pub async fn logs_tail(&self, name_or_id: &str, lines: usize) -> Result<Vec<String>, Error> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: lines.to_string(),
            ..LogsOptions::default()
        };
        let mut stream = pin!(self.docker.logs(name_or_id, Some(options)));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Err(Error::NoSuchContainer(name_or_id.to_string())),
                Err(e) => return Err(e.into()),
            };
            let text = chunk.to_string();
            out.extend(text.lines().map(str::to_string));
        }
        Ok(out)
    }

    /// A container's state as the engine reports it (`State`: status, running, paused,
    /// restarting, OOM-killed, pid, exit code, error, started and finished times; plus
    /// `RestartCount`, `Image`, `Name`), as JSON for evidence.
    pub async fn state(&self, name_or_id: &str) -> Result<serde_json::Value, Error> {
        let c = match self.docker.inspect_container(name_or_id, None).await {
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Err(Error::NoSuchContainer(name_or_id.to_string())),
            other => other?,
        };
        Ok(serde_json::json!({
            "name": c.name.as_deref().map(|n| n.trim_start_matches('/')),
            "id": c.id,
            "image": c.config.as_ref().and_then(|cfg| cfg.image.clone()),
            "restart_count": c.restart_count,
            "state": serde_json::to_value(&c.state).unwrap_or(serde_json::Value::Null),
        }))
    }

    /// Containers (running or not) that carry `label`, with the label's value, by name.
    pub async fn with_label(&self, label: &str) -> Result<Vec<(String, String)>, Error> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..ListContainersOptions::default()
        };
        let mut out = Vec::new();
        for c in self.docker.list_containers(Some(options)).await? {
            let value = c.labels.as_ref().and_then(|l| l.get(label)).cloned();
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string());
            if let (Some(name), Some(value)) = (name, value) {
                out.push((name, value));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Container starts and exits from now on, as a stream (pin it to poll it; it ends only if
    /// the engine closes the connection). Each `start` is inspected before it is yielded; a
    /// container that is already gone or exited by then is skipped, its exit being reported
    /// by its own `die` event. Only `die` yields [`ContainerEvent::Stopped`]: it comes once per
    /// exit however the container stopped, while `kill` can be a signal the container survives
    /// and `stop` merely follows `die`.
    pub fn events(&self) -> impl Stream<Item = Result<ContainerEvent, Error>> + '_ {
        self.events_since(None)
    }

    /// [`Self::events`], replayed from `since` (Unix seconds) when given.
    fn events_since(
        &self,
        since: Option<u64>,
    ) -> impl Stream<Item = Result<ContainerEvent, Error>> + '_ {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let filters = HashMap::from([
            ("type".to_string(), strings(&["container"])),
            ("event".to_string(), strings(&["start", "die"])),
        ]);
        let options = EventsOptions {
            since: since.map(|s| s.to_string()),
            until: None,
            filters: Some(filters),
        };
        self.docker
            .events(Some(options))
            .filter_map(move |message| async move {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => return Some(Err(e.into())),
                };
                let id = message.actor.and_then(|a| a.id)?;
                match message.action.as_deref() {
                    Some("start") => match self.inspect(&id).await {
                        Ok(info) if info.pid.is_some() => Some(Ok(ContainerEvent::Started(info))),
                        Ok(_) | Err(Error::NoSuchContainer(_)) => None,
                        Err(e) => Some(Err(e)),
                    },
                    Some("die") => Some(Ok(ContainerEvent::Stopped { id })),
                    _ => None,
                }
            })
    }
}

/// The running containers by cgroup id and by id, shared between the task that [`follow`]s the
/// engine and the capture threads that look containers up per event.
#[derive(Debug, Default)]
pub struct ContainerDirectory {
    maps: RwLock<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    by_cgroup: HashMap<u64, Arc<ContainerInfo>>,
    by_id: HashMap<String, Arc<ContainerInfo>>,
}

impl Maps {
    fn forget(&mut self, old: &ContainerInfo) {
        // Only drop the cgroup entry if it is still this container's (ids are not reused, but a
        // cgroup inode may be after the directory was removed).
        if let Some(cgroup_id) = old.cgroup_id {
            if self
                .by_cgroup
                .get(&cgroup_id)
                .is_some_and(|c| c.id == old.id)
            {
                self.by_cgroup.remove(&cgroup_id);
            }
        }
    }
}

impl ContainerDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a container (a restarted container gets a new cgroup id).
    pub fn insert(&self, info: ContainerInfo) {
        let info = Arc::new(info);
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = maps.by_id.insert(info.id.clone(), info.clone()) {
            maps.forget(&old);
        }
        if let Some(cgroup_id) = info.cgroup_id {
            maps.by_cgroup.insert(cgroup_id, info);
        }
    }

    /// Removes a container by its full id and returns it; unknown ids are ignored.
    pub fn remove(&self, container_id: &str) -> Option<Arc<ContainerInfo>> {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        let old = maps.by_id.remove(container_id)?;
        maps.forget(&old);
        Some(old)
    }

    /// The container whose main process's cgroup has this id.
    pub fn by_cgroup(&self, cgroup_id: u64) -> Option<Arc<ContainerInfo>> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.by_cgroup.get(&cgroup_id).cloned()
    }

    /// The container with this name (without the leading `/`).
    pub fn by_name(&self, name: &str) -> Option<Arc<ContainerInfo>> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.by_id.values().find(|c| c.name == name).cloned()
    }

    /// The cgroup ids of all known containers, e.g. to fill the capture's filter map.
    pub fn cgroup_ids(&self) -> Vec<u64> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.by_cgroup.keys().copied().collect()
    }
}

/// Keeps `dir` current: loads the running containers, then follows the engine's events, calling
/// `on_change` after each update of `dir` (a [`ContainerEvent::Started`] per running container
/// first; `Stopped` only for containers that were reported started). `dir` is already updated
/// when `on_change` runs, so a callback that mirrors the cgroup ids elsewhere (a BPF map) can
/// resynchronise from [`ContainerDirectory::cgroup_ids`], which also covers a restart's change of
/// cgroup id. Runs until the future is dropped — typically `tokio::spawn` it and abort the
/// handle — and returns only on an error, including [`Error::EventsEnded`].
pub async fn follow(
    client: DockerClient,
    dir: Arc<ContainerDirectory>,
    mut on_change: impl FnMut(&ContainerEvent) + Send + 'static,
) -> Result<(), Error> {
    // Events are replayed from just before the listing so that a container starting or exiting
    // meanwhile is not missed; replaying what the listing already shows is harmless, as events
    // come in order and applying them is idempotent.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs().saturating_sub(1));
    let mut apply = |event: ContainerEvent| {
        let changed = match &event {
            ContainerEvent::Started(info) => {
                dir.insert(info.clone());
                true
            }
            // Containers that exited before they could be inspected were never reported started.
            ContainerEvent::Stopped { id } => dir.remove(id).is_some(),
        };
        if changed {
            on_change(&event);
        }
    };
    for info in client.running().await? {
        apply(ContainerEvent::Started(info));
    }
    let mut events = pin!(client.events_since(since));
    while let Some(event) = events.next().await {
        apply(event?);
    }
    Err(Error::EventsEnded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, name: &str, cgroup_id: Option<u64>) -> ContainerInfo {
        ContainerInfo {
            id: id.to_string(),
            name: name.to_string(),
            image: "mamori-bb".to_string(),
            image_id: "sha256:2e8a".to_string(),
            pid: Some(42),
            cgroup_id,
        }
    }

    #[test]
    fn directory_insert_lookup_remove() {
        let dir = ContainerDirectory::new();
        dir.insert(info("a", "web", Some(10)));
        dir.insert(info("b", "db", None));
        assert_eq!(
            dir.by_cgroup(10).map(|c| c.name.clone()),
            Some("web".into())
        );
        assert_eq!(dir.by_name("db").map(|c| c.id.clone()), Some("b".into()));
        assert_eq!(dir.cgroup_ids(), vec![10]);
        assert_eq!(dir.remove("a").map(|c| c.name.clone()), Some("web".into()));
        assert!(dir.remove("unknown").is_none());
        assert!(dir.by_cgroup(10).is_none() && dir.by_name("web").is_none());
        assert!(dir.by_name("db").is_some());
    }

    #[test]
    fn restart_moves_the_cgroup_id() {
        let dir = ContainerDirectory::new();
        dir.insert(info("a", "web", Some(10)));
        dir.insert(info("a", "web", Some(11)));
        assert!(dir.by_cgroup(10).is_none());
        assert_eq!(dir.by_cgroup(11).map(|c| c.id.clone()), Some("a".into()));
        // A reused inode now held by another container is not dropped with the old one.
        dir.insert(info("b", "db", Some(11)));
        dir.remove("a");
        assert_eq!(dir.by_cgroup(11).map(|c| c.id.clone()), Some("b".into()));
    }
}

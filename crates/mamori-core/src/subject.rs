//! Who an alert or incident is about.

use serde::{Deserialize, Serialize};

/// The thing being watched: a container, the host, a network device, or a recording replayed
/// offline. Alert rules keep one state per subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Subject {
    /// A container, found through the Docker Engine API.
    Container {
        /// Container name.
        name: String,
        /// Full container id.
        id: String,
        /// Image the model was chosen by.
        image: String,
    },
    /// Processes outside any container.
    Host {
        /// Host name.
        name: String,
    },
    /// A network entity: a device (IP or MAC address), a flow's initiator, or a flow.
    Device {
        /// The address or flow key, as the feature extractor names it.
        address: String,
    },
    /// A W3C WoT Thing, probed through its Thing Description.
    Thing {
        /// The Thing's name (its TD title unless configured).
        name: String,
        /// Where its TD came from (URL or file).
        td: String,
        /// The container that runs it (empty when none is mapped).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        container: String,
    },
    /// A recording scored offline (`mamori score`, `mamori eval`).
    Recording {
        /// The file (or files, comma-separated) replayed.
        path: String,
    },
}

impl Subject {
    /// A short name for logs and metric labels.
    pub fn name(&self) -> &str {
        match self {
            Subject::Container { name, .. }
            | Subject::Host { name }
            | Subject::Thing { name, .. } => name,
            Subject::Device { address } => address,
            Subject::Recording { path } => path,
        }
    }

    /// The kind as written in JSON (`container`, `host`, `device`, `thing`, `recording`).
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Container { .. } => "container",
            Subject::Host { .. } => "host",
            Subject::Device { .. } => "device",
            Subject::Thing { .. } => "thing",
            Subject::Recording { .. } => "recording",
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

//! An automatic class table for applications that have no hand-made one.
//!
//! The paper's Table 1 was written by hand for `motion`: the most frequent calls, split by the
//! file or text they touch. This does the same from training data: keep the syscalls that make up
//! most of the traffic, and for each, give its own class to each path prefix that dominates it
//! (e.g. `write` to `/var/log/…` vs `write` to a socket), with a catch-all class after them.
//! Everything else maps to "unknown", so a call the service never made stands out.

use std::collections::HashMap;

use super::{ClassRule, ClassTableConfig, Field, Unmatched};
use crate::event::SyscallEvent;

/// Settings for [`learn_profile`].
#[derive(Debug, Clone)]
pub struct LearnParams {
    /// Profile name written into the table.
    pub name: String,
    /// At most this many syscalls get classes (most frequent first).
    pub max_syscalls: usize,
    /// A syscall needs at least this share of all calls to get a class.
    pub min_syscall_share: f64,
    /// A path prefix needs at least this share of its syscall's calls to get its own class.
    pub min_prefix_share: f64,
    /// At most this many prefix classes per syscall.
    pub max_prefixes_per_syscall: usize,
    /// Path components kept in a prefix (`/var/lib` is 2).
    pub prefix_depth: usize,
}

impl Default for LearnParams {
    fn default() -> Self {
        LearnParams {
            name: "learned".into(),
            max_syscalls: 32,
            min_syscall_share: 0.0005,
            min_prefix_share: 0.15,
            max_prefixes_per_syscall: 3,
            prefix_depth: 2,
        }
    }
}

/// The text a prefix rule looks at, reduced to a prefix: a path cut to `depth` components, or a
/// socket kind (`TCP:`, `UNIX:`…) from a `-yy` / `fd.name` annotation.
fn prefix_key(event: &SyscallEvent, depth: usize) -> Option<(String, Field)> {
    if let Some(fd) = event.fd_path.as_deref() {
        return path_prefix(fd, depth).map(|p| (p, Field::Fd));
    }
    event
        .args
        .iter()
        .find(|a| a.starts_with('/'))
        .and_then(|a| path_prefix(a, depth))
        .map(|p| (p, Field::Args))
}

fn path_prefix(text: &str, depth: usize) -> Option<String> {
    if let Some(rest) = text.strip_prefix('/') {
        let parts: Vec<&str> = rest.split('/').take(depth.max(1)).collect();
        // A bare file in `/` (or a path shorter than the depth) keeps its whole name.
        return Some(format!("/{}", parts.join("/")));
    }
    let kind = text.split([':', '[']).next()?;
    (!kind.is_empty() && kind.len() < text.len()).then(|| format!("{kind}:"))
}

/// Learns a class table from normal events. Deterministic: ties are broken by name.
pub fn learn_profile<'a>(
    events: impl IntoIterator<Item = &'a SyscallEvent>,
    params: &LearnParams,
) -> ClassTableConfig {
    let mut calls: HashMap<&str, usize> = HashMap::new();
    let mut prefixes: HashMap<(&str, String, Field), usize> = HashMap::new();
    let mut total = 0usize;
    for e in events {
        total += 1;
        *calls.entry(e.syscall.as_str()).or_default() += 1;
        if let Some((p, field)) = prefix_key(e, params.prefix_depth) {
            *prefixes.entry((e.syscall.as_str(), p, field)).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = calls.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut classes = Vec::new();
    for (syscall, count) in ranked.into_iter().take(params.max_syscalls) {
        if (count as f64) < params.min_syscall_share * total as f64 {
            break;
        }
        let mut own: Vec<(&String, Field, usize)> = prefixes
            .iter()
            .filter(|((s, _, _), _)| *s == syscall)
            .map(|((_, p, f), &n)| (p, *f, n))
            .filter(|&(_, _, n)| n as f64 >= params.min_prefix_share * count as f64)
            .collect();
        own.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        // A prefix rule only helps if the syscall also has calls outside it.
        let covered: usize = own
            .iter()
            .take(params.max_prefixes_per_syscall)
            .map(|o| o.2)
            .sum();
        if own.len() > 1 || covered < count {
            for (p, field, _) in own.into_iter().take(params.max_prefixes_per_syscall) {
                classes.push(ClassRule {
                    name: None,
                    syscall: syscall.to_string(),
                    contains: None,
                    prefix: Some(p.clone()),
                    field,
                });
            }
        }
        classes.push(ClassRule {
            name: None,
            syscall: syscall.to_string(),
            contains: None,
            prefix: None,
            field: Field::Any,
        });
    }
    ClassTableConfig {
        name: params.name.clone(),
        description: Some(format!(
            "learned from {total} training events: {} classes",
            classes.len()
        )),
        aliases: Default::default(),
        unmatched: Unmatched::Unknown,
        classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::{ClassTable, Classified};

    fn ev(sys: &str, fd: Option<&str>) -> SyscallEvent {
        SyscallEvent {
            fd_path: fd.map(str::to_string),
            ..SyscallEvent::named(sys)
        }
    }

    #[test]
    fn learns_frequent_calls_and_dominant_prefixes() {
        let mut evs = Vec::new();
        for i in 0..50 {
            evs.push(ev("write", Some("/var/log/app.log")));
            evs.push(ev("write", Some("TCP:[1.2.3.4:80->5.6.7.8:9]")));
            if i % 5 == 0 {
                evs.push(ev("write", Some("/tmp/a")));
            }
            evs.push(ev("close", None));
        }
        evs.push(ev("execve", None));
        let params = LearnParams {
            min_syscall_share: 0.01,
            min_prefix_share: 0.3,
            ..LearnParams::default()
        };
        let cfg = learn_profile(&evs, &params);
        let labels: Vec<String> = cfg.classes.iter().map(ClassRule::label).collect();
        assert_eq!(labels, ["write:/var/log*", "write:TCP:*", "write", "close"]);
        let t = ClassTable::new(cfg).unwrap();
        assert_eq!(t.classify(&evs[0]), Classified::Class(0));
        assert_eq!(t.classify(&evs[1]), Classified::Class(1));
        assert_eq!(
            t.classify(&evs[2]),
            Classified::Class(2),
            "/tmp is too rare"
        );
        assert_eq!(t.classify(&ev("execve", None)), Classified::Unknown(4));
    }
}

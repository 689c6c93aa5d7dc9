//! System-call classes: a syscall name plus an optional argument rule (Table 1 of seed 000).
//!
//! A class table is configuration, not code: each application gets its own TOML file
//! (`profiles/motion.toml` is the paper's Table 1), or one learned from training data
//! ([`learn_profile`]). Rules are tried in order and the first match wins, so a catch-all
//! (`write` with no argument rule) goes after the specific `write` rules.
//!
//! Every table has one extra symbol, [`ClassTable::unknown`], for calls the table does not name
//! when `unmatched = "unknown"`; models always reserve probability for it, so a class never seen in
//! training yields a large but finite score.

mod learn;

pub use learn::{learn_profile, LearnParams};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;

use crate::event::SyscallEvent;

/// A class index: `0..n_classes` for the table's classes, `n_classes` for "unknown".
pub type Symbol = u16;

/// What happens to a call no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// Not monitored: the call is dropped before windowing (the paper's behaviour).
    #[default]
    Ignore,
    /// Mapped to the table's "unknown" symbol, so unusual calls (e.g. `execve` in a service
    /// that never executes anything) count against a window.
    Unknown,
}

/// Which part of the event a rule's `contains` / `prefix` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The descriptor's path and every argument (Falco's `evt.args` + `fd.name`).
    #[default]
    Any,
    /// Only the descriptor's path (`fd.name`, strace `-yy`).
    Fd,
    /// Only the arguments.
    Args,
}

/// One row of a class table, as written in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRule {
    /// Human label shown in reports; defaults to `syscall` or `syscall:contains`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The system call (after alias mapping), e.g. `write`, `open`.
    pub syscall: String,
    /// Matches when the chosen field contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// Matches when the chosen field starts with this text (paths: `/var/lib/motion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Where `contains` / `prefix` look.
    #[serde(default, skip_serializing_if = "is_default_field")]
    pub field: Field,
}

fn is_default_field(f: &Field) -> bool {
    *f == Field::Any
}

impl ClassRule {
    /// The label used in reports.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match (&self.contains, &self.prefix) {
            (Some(c), _) => format!("{}:{}", self.syscall, c),
            (None, Some(p)) => format!("{}:{}*", self.syscall, p),
            (None, None) => self.syscall.clone(),
        }
    }

    fn matches(&self, event: &SyscallEvent) -> bool {
        if self.contains.is_none() && self.prefix.is_none() {
            return true;
        }
        let check = |text: &str| {
            self.contains.as_deref().is_none_or(|c| text.contains(c))
                && self.prefix.as_deref().is_none_or(|p| text.starts_with(p))
        };
        let fd = || event.fd_path.as_deref().into_iter();
        let args = || event.args.iter().map(String::as_str);
        match self.field {
            Field::Any => fd().chain(args()).any(check),
            Field::Fd => fd().any(check),
            Field::Args => args().any(check),
        }
    }
}

/// A class table as written in TOML (`profiles/*.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassTableConfig {
    /// Profile name, e.g. `motion`.
    pub name: String,
    /// Free text: where the table comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Modern syscall names mapped to the names the rules use (`openat = "open"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, String>,
    /// What happens to calls no rule matches.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// The classes, in first-match order; a class's index is its position.
    #[serde(rename = "class")]
    pub classes: Vec<ClassRule>,
}

/// Errors in a class table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassTableError {
    /// The table has no classes.
    #[error("class table `{0}` has no classes")]
    Empty(String),
    /// More classes than a [`Symbol`] can index.
    #[error("class table `{name}` has {count} classes; at most {max} are supported")]
    TooMany {
        /// Table name.
        name: String,
        /// Classes found.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A class rule names no system call.
    #[error("class {index} of table `{name}` has an empty syscall name")]
    EmptySyscall {
        /// Table name.
        name: String,
        /// Class index.
        index: usize,
    },
    /// An alias maps to itself through a chain.
    #[error("alias `{0}` maps to an alias; aliases must map straight to a rule's syscall name")]
    AliasChain(String),
}

/// The result of classifying one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// A class of the table.
    Class(Symbol),
    /// No rule matched and the table maps such calls to the unknown symbol.
    Unknown(Symbol),
    /// No rule matched and the table ignores such calls.
    Ignored,
}

impl Classified {
    /// The symbol to window, if the call is monitored.
    pub fn symbol(self) -> Option<Symbol> {
        match self {
            Classified::Class(s) | Classified::Unknown(s) => Some(s),
            Classified::Ignored => None,
        }
    }
}

/// A compiled class table: syscall name → candidate rules, in order.
#[derive(Debug, Clone)]
pub struct ClassTable {
    config: ClassTableConfig,
    by_syscall: HashMap<String, Vec<Symbol>>,
}

impl ClassTable {
    /// Checks and compiles a table.
    pub fn new(config: ClassTableConfig) -> Result<Self, ClassTableError> {
        if config.classes.is_empty() {
            return Err(ClassTableError::Empty(config.name.clone()));
        }
        let max = Symbol::MAX as usize - 1;
        if config.classes.len() > max {
            return Err(ClassTableError::TooMany {
                name: config.name.clone(),
                count: config.classes.len(),
                max,
            });
        }
        for target in config.aliases.values() {
            if config.aliases.contains_key(target) {
                return Err(ClassTableError::AliasChain(target.clone()));
            }
        }
        let mut by_syscall: HashMap<String, Vec<Symbol>> = HashMap::new();
        for (index, rule) in config.classes.iter().enumerate() {
            if rule.syscall.trim().is_empty() {
                return Err(ClassTableError::EmptySyscall {
                    name: config.name.clone(),
                    index,
                });
            }
            by_syscall
                .entry(rule.syscall.clone())
                .or_default()
                .push(index as Symbol);
        }
        Ok(ClassTable { config, by_syscall })
    }

    /// The configuration this table was built from (stored in model files).
    pub fn config(&self) -> &ClassTableConfig {
        &self.config
    }

    /// Number of classes, not counting "unknown".
    pub fn n_classes(&self) -> usize {
        self.config.classes.len()
    }

    /// Alphabet size of every model: the classes plus the unknown symbol.
    pub fn n_symbols(&self) -> usize {
        self.n_classes() + 1
    }

    /// The symbol of calls no rule matches (when not ignored).
    pub fn unknown(&self) -> Symbol {
        self.n_classes() as Symbol
    }

    /// Label of a symbol for reports.
    pub fn label(&self, symbol: Symbol) -> String {
        self.config
            .classes
            .get(symbol as usize)
            .map(ClassRule::label)
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// The syscall name the rules see for `name` (alias applied).
    pub fn canonical<'a>(&'a self, name: &'a str) -> &'a str {
        self.config.aliases.get(name).map_or(name, String::as_str)
    }

    /// Classifies one event: the first rule whose syscall and argument rule match.
    pub fn classify(&self, event: &SyscallEvent) -> Classified {
        let name = self.canonical(&event.syscall);
        if let Some(candidates) = self.by_syscall.get(name) {
            for &c in candidates {
                if self.config.classes[c as usize].matches(event) {
                    return Classified::Class(c);
                }
            }
        }
        match self.config.unmatched {
            Unmatched::Ignore => Classified::Ignored,
            Unmatched::Unknown => Classified::Unknown(self.unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_text: &str) -> ClassTable {
        let cfg: ClassTableConfig = toml::from_str(toml_text).expect("valid toml");
        ClassTable::new(cfg).expect("valid table")
    }

    const T: &str = r#"
name = "t"
unmatched = "ignore"
[aliases]
openat = "open"
[[class]]
syscall = "write"
contains = "motion.log"
[[class]]
syscall = "write"
[[class]]
syscall = "open"
prefix = "/etc/localtime"
field = "args"
[[class]]
syscall = "open"
"#;

    #[test]
    fn first_match_wins_and_aliases_apply() {
        let t = table(T);
        let mut w = SyscallEvent::named("write");
        w.fd_path = Some("/var/log/motion.log".into());
        assert_eq!(t.classify(&w), Classified::Class(0));
        w.fd_path = Some("/tmp/x".into());
        assert_eq!(t.classify(&w), Classified::Class(1));
        let mut o = SyscallEvent::named("openat");
        o.args = vec!["AT_FDCWD".into(), "/etc/localtime".into()];
        assert_eq!(t.classify(&o), Classified::Class(2));
        o.args[1] = "/etc/passwd".into();
        assert_eq!(t.classify(&o), Classified::Class(3));
        assert_eq!(
            t.classify(&SyscallEvent::named("execve")),
            Classified::Ignored
        );
        assert_eq!(t.n_symbols(), 5);
        assert_eq!(t.label(0), "write:motion.log");
        assert_eq!(t.label(4), "unknown");
    }

    #[test]
    fn unknown_mode_maps_to_last_symbol() {
        let t = table(&T.replace("unmatched = \"ignore\"", "unmatched = \"unknown\""));
        assert_eq!(
            t.classify(&SyscallEvent::named("execve")),
            Classified::Unknown(4)
        );
    }

    #[test]
    fn bad_tables_are_rejected_with_the_reason() {
        let cfg: ClassTableConfig = toml::from_str("name = \"e\"\nclass = []").unwrap();
        assert_eq!(
            ClassTable::new(cfg).unwrap_err(),
            ClassTableError::Empty("e".into())
        );
        let err = toml::from_str::<ClassTableConfig>("name = \"e\"\n[[class]]\nsyscal = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("syscal"), "{err}");
        let cfg: ClassTableConfig = toml::from_str(
            "name = \"a\"\n[aliases]\na = \"b\"\nb = \"c\"\n[[class]]\nsyscall = \"c\"",
        )
        .unwrap();
        assert!(matches!(
            ClassTable::new(cfg),
            Err(ClassTableError::AliasChain(_))
        ));
    }
}

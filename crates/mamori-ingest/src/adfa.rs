//! ADFA-LD: one trace per file, whitespace-separated i386 system-call numbers.
//!
//! Numbers are named with the i386 table of the `syscalls` crate (`syscalls::x86::Sysno`, from the
//! kernel's `<asm/unistd_32.h>`); numbers the table lacks become `sys_<n>`. Events carry only
//! `syscall`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use syscalls::x86::Sysno;

use crate::{IngestError, LineError, LineParser, Record, SyscallEvent};

/// The i386 name of system call `n` (`5` → `open`), or `sys_<n>` when the table has none.
pub fn i386_syscall_name(n: u32) -> Cow<'static, str> {
    match usize::try_from(n).ok().and_then(Sysno::new) {
        // The crate spells `break` (17) as the Rust identifier `r#break`.
        Some(call) => Cow::Borrowed(call.name().trim_start_matches("r#")),
        None => Cow::Owned(format!("sys_{n}")),
    }
}

pub(crate) struct AdfaParser;

fn parse_numbers(line: &str, mut each: impl FnMut(u32)) -> Result<(), LineError> {
    for tok in line.split_whitespace() {
        let n = tok.parse::<u32>().map_err(|_| {
            LineError::new(
                "not a syscall number",
                format!("`{}` is not a system-call number", crate::shown(tok)),
            )
        })?;
        each(n);
    }
    Ok(())
}

impl LineParser for AdfaParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        // Validate the whole line first so a bad line yields nothing.
        parse_numbers(line, |_| {})?;
        parse_numbers(line, |n| {
            out.push_back(Record::Call(SyscallEvent::named(i386_syscall_name(n))))
        })
    }
}

/// One ADFA-LD trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The trace file.
    pub path: PathBuf,
    /// Attack family (`Adduser`, `Hydra_FTP`, …); `None` for normal traces.
    pub family: Option<String>,
    /// Attack variant (the `_<n>` of the folder, 1..10); `None` for normal traces.
    pub variant: Option<u32>,
    /// The i386 system-call numbers, in order.
    pub calls: Vec<u32>,
}

impl Trace {
    /// The calls' names.
    pub fn names(&self) -> impl Iterator<Item = Cow<'static, str>> + '_ {
        self.calls.iter().map(|&n| i386_syscall_name(n))
    }

    /// The calls as events (only `syscall` set).
    pub fn events(&self) -> impl Iterator<Item = SyscallEvent> + '_ {
        self.names().map(SyscallEvent::named)
    }
}

/// The ADFA-LD data set, in sorted file order (attack folders by family, then variant number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdfaDataset {
    /// `Training_Data_Master/UTD-*.txt` (833 normal traces).
    pub training: Vec<Trace>,
    /// `Validation_Data_Master/UVD-*.txt` (4,372 normal traces).
    pub validation: Vec<Trace>,
    /// `Attack_Data_Master/<Family>_<n>/UAD-*.txt` (746 attack traces).
    pub attacks: Vec<Trace>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io {
        path: path.display().to_string(),
        line: 0,
        source,
    }
}

/// The `.txt` files of `dir`, sorted by name.
fn trace_files(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "txt") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_trace(
    path: PathBuf,
    family: Option<String>,
    variant: Option<u32>,
) -> Result<Trace, IngestError> {
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    let mut calls = Vec::new();
    for (i, line) in text.lines().enumerate() {
        parse_numbers(line, |n| calls.push(n)).map_err(|e| IngestError::Malformed {
            path: path.display().to_string(),
            line: i as u64 + 1,
            format: crate::Format::Adfa,
            reason: e.reason,
            message: crate::safe_message(&e.message),
        })?;
    }
    Ok(Trace {
        path,
        family,
        variant,
        calls,
    })
}

/// Loads ADFA-LD from its root folder (the one holding `Training_Data_Master`,
/// `Validation_Data_Master` and `Attack_Data_Master`). The whole data set (about 2.7 million
/// calls) is held in memory as numbers.
pub fn read_adfa_dataset(root: impl AsRef<Path>) -> Result<AdfaDataset, IngestError> {
    let root = root.as_ref();
    let normal = |dir: &str| -> Result<Vec<Trace>, IngestError> {
        trace_files(&root.join(dir))?
            .into_iter()
            .map(|p| read_trace(p, None, None))
            .collect()
    };
    let training = normal("Training_Data_Master")?;
    let validation = normal("Validation_Data_Master")?;
    let attack_root = root.join("Attack_Data_Master");
    let mut folders = Vec::new();
    for entry in fs::read_dir(&attack_root).map_err(io_err(&attack_root))? {
        let path = entry.map_err(io_err(&attack_root))?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parsed = name
            .rsplit_once('_')
            .and_then(|(fam, n)| Some((fam.to_string(), n.parse::<u32>().ok()?)));
        let Some((family, variant)) = parsed else {
            return Err(IngestError::Dataset {
                path: path.display().to_string(),
                line: 0,
                message: "attack folder name is not `<Family>_<n>`".into(),
            });
        };
        folders.push((family, variant, path));
    }
    folders.sort();
    let mut attacks = Vec::new();
    for (family, variant, dir) in folders {
        for p in trace_files(&dir)? {
            attacks.push(read_trace(p, Some(family.clone()), Some(variant))?);
        }
    }
    Ok(AdfaDataset {
        training,
        validation,
        attacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventReader, Format};

    #[test]
    fn names() {
        assert_eq!(i386_syscall_name(5), "open");
        assert_eq!(i386_syscall_name(252), "exit_group");
        assert_eq!(i386_syscall_name(195), "stat64");
        assert_eq!(i386_syscall_name(0), "restart_syscall");
        assert_eq!(i386_syscall_name(222), "sys_222"); // unused slot
        assert_eq!(i386_syscall_name(17), "break"); // not `r#break`
        assert_eq!(i386_syscall_name(340), "prlimit64"); // the highest number in ADFA-LD
        assert_eq!(i386_syscall_name(450), "set_mempolicy_home_node");
        assert_eq!(i386_syscall_name(451), "cachestat"); // newer than the old generated table
        assert_eq!(i386_syscall_name(100_000), "sys_100000");
    }

    #[test]
    fn reads_numbers() {
        let mut r = EventReader::new("6 6 63\n\n 5 x 3\n4 \n".as_bytes(), "t", Format::Adfa, true);
        let names: Vec<String> = r.by_ref().map(|e| e.unwrap().syscall).collect();
        assert_eq!(names, ["close", "close", "dup2", "write"]);
        assert_eq!(r.skipped().examples()[0].at, crate::SkipAt::Line(3));
    }
}

//! Writing an output file the way a user means it.
//!
//! A regular file is replaced atomically (a temporary file beside it, synced, then renamed over
//! it), so a crash never leaves half a model or config. Anything else is *written through*: a
//! FIFO (`-o >(gzip > m.gz)`), a terminal or `/dev/null` must keep being what they are — renaming
//! a temporary file over `/dev/null` as root would replace the device. A symbolic link to a
//! regular file is refused unless the caller asks to replace the link itself: renaming over it
//! would silently cut the link, and writing into its target may surprise just as much.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What to do when the output path is a symbolic link to a regular file (or a dangling one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SymlinkPolicy {
    /// Refuse with [`OutputError::Symlink`].
    #[default]
    Refuse,
    /// Replace the link itself with the new regular file (the old target is left as it was).
    Replace,
    /// Replace the file the link points to, atomically, keeping the link (what an editor does to
    /// a linked config file).
    Follow,
}

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path is a symbolic link and the policy is [`SymlinkPolicy::Refuse`].
    #[error(
        "{path} is a symbolic link to {target}; not replacing it (write to the target's path, \
         or ask for the link to be replaced)"
    )]
    Symlink {
        /// The output path.
        path: String,
        /// Where the link points.
        target: String,
    },
    /// The path is a directory.
    #[error("{path} is a directory")]
    Directory {
        /// The output path.
        path: String,
    },
    /// Writing failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file being written (the output or its temporary file).
        path: String,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        source: io::Error,
    },
}

/// How `path` will be written, decided from what is there now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Atomic replace of a regular file (or a new one) at this path.
    Replace(PathBuf),
    /// Open and write into what is there (FIFO, device, socket, or a link to one).
    Through,
}

fn plan(path: &Path, symlinks: SymlinkPolicy) -> Result<Plan, OutputError> {
    let io = |action, source| OutputError::Io {
        path: path.display().to_string(),
        action,
        source,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Plan::Replace(path.into())),
        Err(e) => return Err(io("inspect", e)),
    };
    if meta.file_type().is_symlink() {
        // Where the chain of links ends decides: a device or pipe behind a link (/dev/stdout)
        // is written through; a regular file (or nothing) behind it is the dangerous case.
        match fs::metadata(path) {
            Ok(target) if !target.is_file() && !target.is_dir() => return Ok(Plan::Through),
            Ok(target) if target.is_dir() => {
                return Err(OutputError::Directory {
                    path: path.display().to_string(),
                })
            }
            _ => {}
        }
        return match symlinks {
            SymlinkPolicy::Replace => Ok(Plan::Replace(path.into())),
            SymlinkPolicy::Follow => match fs::canonicalize(path) {
                Ok(target) => Ok(Plan::Replace(target)),
                Err(e) => Err(io("follow the link", e)),
            },
            SymlinkPolicy::Refuse => Err(OutputError::Symlink {
                path: path.display().to_string(),
                target: fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into()),
            }),
        };
    }
    if meta.is_dir() {
        return Err(OutputError::Directory {
            path: path.display().to_string(),
        });
    }
    Ok(if meta.is_file() {
        Plan::Replace(path.into())
    } else {
        Plan::Through
    })
}

/// The temporary name beside `path`: hidden, unique per process, same directory (so the rename
/// stays on one file system).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.tmp~", std::process::id()))
}

/// Writes `bytes` to `path`: atomic replace for a regular or new file, written through for a
/// FIFO or device, refused (by default) for a symbolic link to a regular file.
pub fn write_output(path: &Path, bytes: &[u8], symlinks: SymlinkPolicy) -> Result<(), OutputError> {
    match plan(path, symlinks)? {
        Plan::Through => {
            let io = |action, source| OutputError::Io {
                path: path.display().to_string(),
                action,
                source,
            };
            // No create, no truncate: a device or pipe has no length to cut.
            let mut file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io("open", e))?;
            file.write_all(bytes).map_err(|e| io("write", e))?;
            file.flush().map_err(|e| io("write", e))
        }
        Plan::Replace(path) => {
            let path = path.as_path();
            let tmp = temp_path(path);
            let io_tmp = |action, source| OutputError::Io {
                path: tmp.display().to_string(),
                action,
                source,
            };
            let result = (|| {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(|e| io_tmp("create", e))?;
                file.write_all(bytes).map_err(|e| io_tmp("write", e))?;
                file.sync_all().map_err(|e| io_tmp("sync", e))?;
                fs::rename(&tmp, path).map_err(|source| OutputError::Io {
                    path: path.display().to_string(),
                    action: "replace",
                    source,
                })
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mamori-output-{}-{}",
            std::process::id(),
            crate::time::now_ns()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn new_and_regular_files_are_replaced_atomically() {
        let d = dir();
        let p = d.join("m.json");
        write_output(&p, b"one", SymlinkPolicy::Refuse).unwrap();
        write_output(&p, b"two", SymlinkPolicy::Refuse).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // nothing left beside it
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_symlink_to_a_file_is_refused_unless_asked() {
        let d = dir();
        let target = d.join("target.json");
        fs::write(&target, b"keep").unwrap();
        let link = d.join("link.json");
        symlink(&target, &link).unwrap();
        let err = write_output(&link, b"new", SymlinkPolicy::Refuse).unwrap_err();
        assert!(matches!(err, OutputError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"keep");

        write_output(&link, b"new", SymlinkPolicy::Replace).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read(&link).unwrap(), b"new");
        assert_eq!(fs::read(&target).unwrap(), b"keep");

        let link2 = d.join("link2.json");
        symlink(&target, &link2).unwrap();
        write_output(&link2, b"followed", SymlinkPolicy::Follow).unwrap();
        assert!(fs::symlink_metadata(&link2)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"followed");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn devices_are_written_through_not_replaced() {
        // /dev/null stays a character device (renaming over it as root would replace it).
        write_output(Path::new("/dev/null"), b"x", SymlinkPolicy::Refuse).unwrap();
        let meta = fs::symlink_metadata("/dev/null").unwrap();
        assert!(!meta.is_file());
        // and a link to a device too
        let d = dir();
        let link = d.join("null");
        symlink("/dev/null", &link).unwrap();
        write_output(&link, b"x", SymlinkPolicy::Refuse).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_fifo_is_written_through() {
        let d = dir();
        let fifo = d.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_output(&fifo, b"model", SymlinkPolicy::Refuse).unwrap();
        assert_eq!(reader.join().unwrap(), b"model");
        assert!(!fs::symlink_metadata(&fifo).unwrap().is_file());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_directory_is_an_error() {
        let d = dir();
        let err = write_output(&d, b"x", SymlinkPolicy::Replace).unwrap_err();
        assert!(matches!(err, OutputError::Directory { .. }));
        fs::remove_dir_all(d).unwrap();
    }
}

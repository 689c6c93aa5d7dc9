//! The fallback capture when eBPF is unavailable: `strace` attached to a process tree, its text
//! output streamed through mamori's strace reader. ptrace stops the traced process at every
//! system call, so it slows it down many times over; use it to learn or to debug, not to guard a
//! busy production container.

use std::io::{self, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use mamori_ingest::{EventReader, Format, IngestError, Record};

/// What the warning printed before ptrace capture says.
pub const OVERHEAD_WARNING: &str = "ptrace capture (strace) stops the traced processes at every \
system call: expect them to run several times slower. Use the eBPF backend where possible.";

/// A running strace and the records it prints.
pub struct PtraceCapture {
    child: Child,
    reader: EventReader<BufReader<ChildStdout>>,
}

/// The strace flags the reader expects: follow children, epoch timestamps, descriptor paths.
fn strace() -> Command {
    let mut c = Command::new("strace");
    c.args(["-f", "-ttt", "-yy", "-s", "256", "-q", "-o", "/dev/stdout"]);
    c.stdout(Stdio::piped()).stdin(Stdio::null());
    c
}

impl PtraceCapture {
    /// Attaches to running processes (and, with `-f`, every child they start afterwards).
    pub fn attach(pids: &[u32]) -> io::Result<Self> {
        if pids.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no process to attach to",
            ));
        }
        let mut c = strace();
        for pid in pids {
            c.arg("-p").arg(pid.to_string());
        }
        Self::from_command(c, "strace -p")
    }

    /// Starts `command` under strace.
    pub fn spawn(command: &[String]) -> io::Result<Self> {
        let Some((program, args)) = command.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no command to run",
            ));
        };
        let mut c = strace();
        c.arg("--").arg(program).args(args);
        Self::from_command(c, program)
    }

    fn from_command(mut c: Command, what: &str) -> io::Result<Self> {
        let mut child = c.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not start strace (is it installed?): {e}"),
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("strace has no stdout pipe"))?;
        // lenient: strace's own notes between calls are skipped, not fatal
        let reader = EventReader::new(
            BufReader::new(stdout),
            format!("ptrace({what})"),
            Format::Strace,
            true,
        );
        Ok(PtraceCapture { child, reader })
    }

    /// The next call or process exit; `None` once strace has ended.
    pub fn next_record(&mut self) -> Option<Result<Record, IngestError>> {
        self.reader.next_record()
    }

    /// The process id of strace itself.
    pub fn strace_pid(&self) -> u32 {
        self.child.id()
    }

    /// Detaches (strace releases its tracees on SIGTERM) and waits for strace to end.
    pub fn stop(mut self) -> io::Result<()> {
        // SAFETY: kill only sends a signal to the child we started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().map(|_| ())
    }
}

/// Every process of a container's cgroup, from `cgroup.procs` of its cgroup directory.
pub fn cgroup_procs(cgroup_dir: &std::path::Path) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(cgroup_dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traced_command_yields_its_calls() {
        if Command::new("strace").arg("-V").output().is_err() {
            eprintln!("skipped: strace is not installed");
            return;
        }
        let mut cap = PtraceCapture::spawn(&["/bin/cat".into(), "/etc/hostname".into()])
            .expect("strace starts");
        let mut opened = false;
        let mut exited = false;
        while let Some(r) = cap.next_record() {
            match r.expect("strace output parses") {
                Record::Call(e)
                    if e.syscall == "openat" && e.args.iter().any(|a| a == "/etc/hostname") =>
                {
                    assert_eq!(e.fd_path.as_deref(), Some("/etc/hostname"));
                    opened = true;
                }
                Record::Exit { .. } => exited = true,
                _ => {}
            }
        }
        assert!(opened, "cat's open of /etc/hostname was captured");
        assert!(exited, "the process exit was captured");
        cap.stop().expect("strace ends");
    }
}

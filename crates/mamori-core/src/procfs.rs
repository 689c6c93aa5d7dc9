//! `/proc/PID/stat`, the one field set both the live capture (a child's parent before its fork
//! returns) and root-cause analysis (a container's shim and processes) read.

/// A process's command name and parent pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name (`comm`, at most 16 bytes; may hold spaces and parentheses).
    pub comm: String,
    /// The parent's pid.
    pub ppid: u32,
}

/// Parses `PID (COMM) STATE PPID …`: the fields after the command name are found from its
/// last `)`, since the name itself may hold `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(Stat { comm, ppid })
}

/// `PROC_ROOT/PID/stat` (`/proc` on the host), parsed; `None` when the process is gone.
pub fn read_stat(proc_root: &str, pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("{proc_root}/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn command_names_with_spaces_and_parentheses_parse() {
        let s = parse_stat("11363 (docker-init) S 11343 11363 11363 0 -1").expect("parses");
        assert_eq!((s.comm.as_str(), s.ppid), ("docker-init", 11343));
        let s = parse_stat("7 (a) b (c)) R 1 7 7").expect("parses");
        assert_eq!((s.comm.as_str(), s.ppid), ("a) b (c)", 1));
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S notapid").is_none());
    }
}

//! The system calls the graph builder understands, by name (preferred: the parser fills it from
//! ENRICHED logs or its own table) or by number for x86_64 (`c000003e`) and aarch64
//! (`c00000b7`) when the name is missing.

use mamori_audit::Syscall;

/// x86_64's audit architecture.
pub const ARCH_X86_64: &str = "c000003e";
/// aarch64's audit architecture.
pub const ARCH_AARCH64: &str = "c00000b7";

macro_rules! calls {
    ($($variant:ident $name:literal $x86:literal $arm:literal;)*) => {
        /// A system call the builder handles.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Call {
            $($variant,)*
        }

        impl Call {
            /// The call for a name as the kernel spells it.
            pub fn from_name(name: &str) -> Option<Call> {
                match name {
                    $($name => Some(Call::$variant),)*
                    _ => None,
                }
            }

            /// The call for an x86_64 number.
            pub fn from_x86_64(nr: i64) -> Option<Call> {
                match nr {
                    $($x86 => Some(Call::$variant),)*
                    _ => None,
                }
            }

            /// The call for an aarch64 number (the generic table; `-1` marks calls aarch64
            /// does not have).
            pub fn from_aarch64(nr: i64) -> Option<Call> {
                if nr < 0 {
                    return None;
                }
                [$((Call::$variant, $arm),)*].iter().find(|(_, n)| *n == nr).map(|(c, _)| *c)
            }

            /// The kernel's name.
            #[allow(dead_code)]
            pub fn name(self) -> &'static str {
                match self {
                    $(Call::$variant => $name,)*
                }
            }

            /// The x86_64 number.
            pub fn x86_64(self) -> i64 {
                match self {
                    $(Call::$variant => $x86,)*
                }
            }
        }
    };
}

// name, x86_64 number, aarch64 number (-1: none).
calls! {
    Read "read" 0 63;
    Write "write" 1 64;
    Open "open" 2 -1;
    Close "close" 3 57;
    Mmap "mmap" 9 222;
    Pread "pread64" 17 67;
    Pwrite "pwrite64" 18 68;
    Readv "readv" 19 65;
    Writev "writev" 20 66;
    Pipe "pipe" 22 -1;
    Dup "dup" 32 23;
    Dup2 "dup2" 33 -1;
    Connect "connect" 42 203;
    Accept "accept" 43 202;
    Sendto "sendto" 44 206;
    Recvfrom "recvfrom" 45 207;
    Sendmsg "sendmsg" 46 211;
    Recvmsg "recvmsg" 47 212;
    Bind "bind" 49 200;
    Socketpair "socketpair" 53 199;
    Clone "clone" 56 220;
    Fork "fork" 57 -1;
    Vfork "vfork" 58 -1;
    Execve "execve" 59 221;
    Exit "exit" 60 93;
    Kill "kill" 62 129;
    Truncate "truncate" 76 45;
    Ftruncate "ftruncate" 77 46;
    Rename "rename" 82 -1;
    Rmdir "rmdir" 84 -1;
    Creat "creat" 85 -1;
    Link "link" 86 -1;
    Unlink "unlink" 87 -1;
    Symlink "symlink" 88 -1;
    Chmod "chmod" 90 -1;
    Fchmod "fchmod" 91 52;
    Chown "chown" 92 -1;
    Fchown "fchown" 93 55;
    Lchown "lchown" 94 -1;
    Ptrace "ptrace" 101 117;
    Mknod "mknod" 133 -1;
    Tkill "tkill" 200 130;
    ExitGroup "exit_group" 231 94;
    Tgkill "tgkill" 234 131;
    Openat "openat" 257 56;
    Mknodat "mknodat" 259 33;
    Fchownat "fchownat" 260 54;
    Unlinkat "unlinkat" 263 35;
    Renameat "renameat" 264 38;
    Linkat "linkat" 265 37;
    Symlinkat "symlinkat" 266 36;
    Fchmodat "fchmodat" 268 53;
    Accept4 "accept4" 288 242;
    Dup3 "dup3" 292 24;
    Pipe2 "pipe2" 293 59;
    Renameat2 "renameat2" 316 276;
    Execveat "execveat" 322 281;
    Clone3 "clone3" 435 435;
    Openat2 "openat2" 437 437;
}

/// The call an event's SYSCALL record stands for: its name when the parser gave one, else its
/// number for the architecture.
pub fn classify(sc: &Syscall) -> Option<Call> {
    if let Some(name) = sc.name.as_deref() {
        if let Some(c) = Call::from_name(name) {
            return Some(c);
        }
        // A name we do not handle is authoritative: do not second-guess it by number.
        if !name.is_empty() {
            return None;
        }
    }
    match sc.arch.to_ascii_lowercase().as_str() {
        ARCH_X86_64 | "x86_64" => Call::from_x86_64(sc.number),
        ARCH_AARCH64 | "aarch64" => Call::from_aarch64(sc.number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(arch: &str, number: i64, name: Option<&str>) -> Syscall {
        Syscall {
            arch: arch.into(),
            number,
            name: name.map(str::to_string),
            ..Syscall::default()
        }
    }

    #[test]
    fn name_first_then_number() {
        assert_eq!(classify(&sc(ARCH_X86_64, 59, None)), Some(Call::Execve));
        assert_eq!(classify(&sc(ARCH_X86_64, 257, None)), Some(Call::Openat));
        assert_eq!(classify(&sc(ARCH_X86_64, 435, None)), Some(Call::Clone3));
        assert_eq!(classify(&sc(ARCH_AARCH64, 221, None)), Some(Call::Execve));
        assert_eq!(classify(&sc(ARCH_AARCH64, 56, None)), Some(Call::Openat));
        // The name wins over a number that means something else.
        assert_eq!(
            classify(&sc(ARCH_X86_64, 0, Some("connect"))),
            Some(Call::Connect)
        );
        assert_eq!(classify(&sc(ARCH_X86_64, 59, Some("getpid"))), None);
        assert_eq!(
            classify(&sc("40000003", 11, None)),
            None,
            "i386 is not mapped"
        );
    }

    #[test]
    fn table_is_consistent() {
        for nr in 0..500 {
            if let Some(c) = Call::from_x86_64(nr) {
                assert_eq!(c.x86_64(), nr);
                assert_eq!(Call::from_name(c.name()), Some(c));
            }
        }
    }
}

//! The decoded views of an event ([`Syscall`], [`Execve`], [`PathItem`]s, CWD, [`SockAddr`],
//! the process title), built once when the event is complete.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::event::{AuditEvent, Execve, PathItem, Record, SockAddr, Syscall, Value};
use crate::hex::{decode_hex, decode_untrusted, parse_hex_u64};
use crate::syscalls::syscall_name;

/// `AUDIT_ARCH_LE`: the architecture is little-endian (sockaddr families are host-endian).
const ARCH_LE: u64 = 0x4000_0000;

/// Builds an event from its records (arrival order), decoding the views provenance reads.
pub fn build_event(serial: u64, time_ns: i64, records: Vec<Record>) -> AuditEvent {
    let mut ev = AuditEvent {
        serial,
        time_ns,
        ..AuditEvent::default()
    };
    let mut has_execve = false;
    let mut saddr = None;
    for r in &records {
        match r.kind.as_str() {
            "SYSCALL" if ev.syscall.is_none() => ev.syscall = Some(decode_syscall(r)),
            "EXECVE" => has_execve = true,
            "PATH" => ev.paths.push(decode_path(r)),
            "CWD" if ev.cwd.is_none() => ev.cwd = r.decoded("cwd").map(Cow::into_owned),
            "SOCKADDR" if saddr.is_none() => saddr = r.get("saddr"),
            "PROCTITLE" if ev.proctitle.is_none() => {
                ev.proctitle = r.value("proctitle").map(decode_proctitle)
            }
            _ => {}
        }
    }
    if has_execve {
        ev.execve = Some(decode_execve(records.iter().filter(|r| r.kind == "EXECVE")));
    }
    if let Some(hex) = saddr {
        // The family (and a netlink port id) are in the host's byte order; the SYSCALL record's
        // arch says which. Without one, little-endian, as nearly every audited host is.
        let le = ev
            .syscall
            .as_ref()
            .and_then(|s| parse_hex_u64(&s.arch))
            .is_none_or(|a| a & ARCH_LE != 0);
        ev.sockaddr = Some(decode_sockaddr(hex, le));
    }
    // PATH records come in item order; sorting (stably) only matters for hand-made input.
    if ev.paths.windows(2).any(|w| w[0].item > w[1].item) {
        ev.paths.sort_by_key(|p| p.item);
    }
    ev.records = records;
    ev
}

/// A user or process id: `4294967295` (unset) and anything unreadable are `u32::MAX`.
fn id(text: &str) -> u32 {
    text.parse().unwrap_or(u32::MAX)
}

/// An untrusted string's bytes: quoted → as written, unquoted hex → decoded, else as written.
fn untrusted_bytes<'a>(v: &Value<'a>) -> Cow<'a, [u8]> {
    if !v.quoted {
        if let Some(b) = decode_hex(v.text) {
            if !v.text.is_empty() {
                return Cow::Owned(b);
            }
        }
    }
    Cow::Borrowed(v.text.as_bytes())
}

fn lossy(bytes: Cow<'_, [u8]>) -> String {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b).into_owned(),
        Cow::Owned(b) => String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The SYSCALL record's fields, in one pass over them.
pub fn decode_syscall(r: &Record) -> Syscall {
    let mut s = Syscall {
        number: -1,
        pid: u32::MAX,
        ppid: u32::MAX,
        uid: u32::MAX,
        euid: u32::MAX,
        auid: u32::MAX,
        ses: u32::MAX,
        ..Syscall::default()
    };
    for (k, v) in r.values() {
        if v.nested {
            continue;
        }
        match k {
            "arch" => s.arch = v.text.to_owned(),
            "syscall" => s.number = v.text.parse().unwrap_or(-1),
            "success" => s.success = v.text == "yes",
            "exit" => s.exit = v.text.parse().unwrap_or(0),
            "a0" | "a1" | "a2" | "a3" => {
                let i = usize::from(k.as_bytes()[1] - b'0');
                s.args[i] = parse_hex_u64(v.text).unwrap_or(0);
            }
            "pid" => s.pid = id(v.text),
            "ppid" => s.ppid = id(v.text),
            "uid" => s.uid = id(v.text),
            "euid" => s.euid = id(v.text),
            "auid" => s.auid = id(v.text),
            "ses" => s.ses = id(v.text),
            "comm" => s.comm = v.decoded().map(Cow::into_owned).unwrap_or_default(),
            "exe" => s.exe = v.decoded().map(Cow::into_owned).unwrap_or_default(),
            "key" => s.key = v.decoded().map(Cow::into_owned),
            _ => {}
        }
    }
    s.name = match r.interpreted_get("SYSCALL") {
        Some(name) => Some(name.to_owned()),
        None => syscall_name(&s.arch, s.number).map(str::to_owned),
    };
    s
}

/// The arguments of one or more EXECVE records (long argument lists span several): `aN` whole,
/// or `aN_len=…` followed by pieces `aN[0]`, `aN[1]`, … each quoted or hex on its own; pieces
/// are joined as bytes so a UTF-8 character split between two survives.
pub fn decode_execve<'a>(records: impl IntoIterator<Item = &'a Record>) -> Execve {
    let mut argc = 0usize;
    let mut args: Vec<(usize, Vec<u8>)> = Vec::new();
    for r in records {
        for (k, v) in r.values() {
            if k == "argc" {
                argc = v.text.parse().unwrap_or(0);
                continue;
            }
            let Some(rest) = k.strip_prefix('a') else {
                continue;
            };
            let n_end = rest
                .bytes()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let Ok(n) = rest[..n_end].parse::<usize>() else {
                continue;
            };
            let tail = &rest[n_end..];
            let piece = tail.starts_with('[') && tail.ends_with(']');
            if !(tail.is_empty() || piece || tail == "_len") {
                continue;
            }
            // Arguments arrive in order; a new index opens a new slot.
            if args.last().is_none_or(|(m, _)| *m != n) {
                args.push((n, Vec::new()));
            }
            if let (Some((_, bytes)), false) = (args.last_mut(), tail == "_len") {
                bytes.extend_from_slice(&untrusted_bytes(&v));
            }
        }
    }
    if args.windows(2).any(|w| w[0].0 >= w[1].0) {
        args.sort_by_key(|(n, _)| *n);
        args.dedup_by_key(|(n, _)| *n);
    }
    Execve {
        argv: args
            .into_iter()
            .map(|(_, b)| lossy(Cow::Owned(b)))
            .collect(),
        argc,
    }
}

/// One PATH record.
pub fn decode_path(r: &Record) -> PathItem {
    let mut p = PathItem::default();
    for (k, v) in r.values() {
        match k {
            "item" => p.item = v.text.parse().unwrap_or(0),
            "name" => p.name = decode_untrusted(v.text, v.quoted).map(Cow::into_owned),
            "inode" => p.inode = v.text.parse().ok(),
            "dev" => p.dev = Some(v.text.to_owned()),
            "mode" => p.mode = u32::from_str_radix(v.text, 8).ok(),
            "nametype" => p.nametype = v.text.to_owned(),
            _ => {}
        }
    }
    p
}

/// PROCTITLE: the command line, NUL-separated and usually hex; trailing NULs dropped, inner NULs
/// become spaces.
pub fn decode_proctitle(v: Value<'_>) -> String {
    let bytes = untrusted_bytes(&v);
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let spaced: Vec<u8> = bytes[..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    lossy(Cow::Owned(spaced))
}

/// A `saddr=` hex sockaddr; `little_endian` is the host's order (the family is host-endian,
/// ports are network order). Unreadable hex and unknown families are [`SockAddr::Other`], with
/// family 0 when not even the family could be read.
pub fn decode_sockaddr(hex: &str, little_endian: bool) -> SockAddr {
    let other = |number: u16| SockAddr::Other {
        number,
        raw: hex.to_owned(),
    };
    let Some(b) = decode_hex(hex).filter(|b| b.len() >= 2) else {
        return other(0);
    };
    let host16 = |x: [u8; 2]| {
        if little_endian {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        }
    };
    let family = host16([b[0], b[1]]);
    match family {
        // AF_UNIX: a path up to its NUL, or an abstract name (leading NUL) shown as `@name`.
        1 => {
            let path = &b[2..];
            let text = match path.first() {
                Some(0) => {
                    let name = &path[1..];
                    let end = name.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
                    format!("@{}", String::from_utf8_lossy(&name[..end]))
                }
                _ => {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    String::from_utf8_lossy(&path[..end]).into_owned()
                }
            };
            SockAddr::Unix { path: text }
        }
        2 if b.len() >= 8 => SockAddr::Inet {
            addr: Ipv4Addr::new(b[4], b[5], b[6], b[7]).to_string(),
            port: u16::from_be_bytes([b[2], b[3]]),
        },
        10 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            SockAddr::Inet6 {
                addr: Ipv6Addr::from(a).to_string(),
                port: u16::from_be_bytes([b[2], b[3]]),
            }
        }
        16 if b.len() >= 8 => {
            let x = [b[4], b[5], b[6], b[7]];
            let pid = if little_endian {
                u32::from_le_bytes(x)
            } else {
                u32::from_be_bytes(x)
            };
            SockAddr::Netlink { pid }
        }
        n => other(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    fn rec(line: &str) -> Record {
        parse_line(line).unwrap().record
    }

    #[test]
    fn syscall_raw_uses_the_table_enriched_uses_its_name() {
        let raw = rec("type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=7ffd1c2e8a40 a2=10 a3=0 items=0 ppid=1 pid=2 auid=4294967295 uid=33 gid=33 euid=33 suid=33 fsuid=33 egid=33 sgid=33 fsgid=33 tty=(none) ses=4294967295 comm=6375726C2031 exe=\"/usr/bin/curl\" key=(null)");
        let s = decode_syscall(&raw);
        assert_eq!(s.arch, "c000003e");
        assert_eq!(s.number, 42);
        assert_eq!(s.name.as_deref(), Some("connect"));
        assert!(!s.success);
        assert_eq!(s.exit, -111);
        assert_eq!(s.args, [3, 0x7ffd1c2e8a40, 0x10, 0]);
        assert_eq!((s.pid, s.ppid, s.uid, s.euid), (2, 1, 33, 33));
        assert_eq!((s.auid, s.ses), (u32::MAX, u32::MAX));
        assert_eq!(s.comm, "curl 1", "hex comm decoded");
        assert_eq!(s.exe, "/usr/bin/curl");
        assert_eq!(s.key, None, "(null) key");

        let enriched = rec("type=SYSCALL msg=audit(1.000:1): arch=c00000b7 syscall=221 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 pid=9 key=6B31016B32\x1dARCH=aarch64 SYSCALL=execve-from-enriched");
        let s = decode_syscall(&enriched);
        assert_eq!(s.name.as_deref(), Some("execve-from-enriched"));
        assert_eq!(
            s.key.as_deref(),
            Some("k1\u{1}k2"),
            "several keys are hex with 0x01 between"
        );
        let aarch = rec("type=SYSCALL msg=audit(1.000:1): arch=c00000b7 syscall=221 key=\"x\"");
        assert_eq!(decode_syscall(&aarch).name.as_deref(), Some("execve"));
        let unknown = rec("type=SYSCALL msg=audit(1.000:1): arch=40000003 syscall=11");
        assert_eq!(decode_syscall(&unknown).name, None);
    }

    #[test]
    fn execve_hex_quoted_and_split_arguments() {
        let a = rec("type=EXECVE msg=audit(1.000:1): argc=4 a0=\"sh\" a1=\"-c\" a2=6563686F202268692122 a3_len=9 a3[0]=\"abc\" a3[1]=646566 a3[2]=C3");
        let b = rec("type=EXECVE msg=audit(1.000:1): a3[3]=A9 a3[4]=\"!\"");
        let e = decode_execve([&a, &b]);
        assert_eq!(e.argc, 4);
        assert_eq!(e.argv, vec!["sh", "-c", "echo \"hi!\"", "abcdefé!"]);
        let lost = decode_execve([&rec("type=EXECVE msg=audit(1.000:1): argc=3 a0=\"ls\"")]);
        assert_eq!((lost.argc, lost.argv.len()), (3, 1));
        let empty = decode_execve([&rec(
            "type=EXECVE msg=audit(1.000:1): argc=2 a0=\"x\" a1=\"\"",
        )]);
        assert_eq!(empty.argv, vec!["x", ""]);
    }

    #[test]
    fn path_items() {
        let p = decode_path(&rec("type=PATH msg=audit(1.000:1): item=1 name=2F746D702F6120622E7368 inode=1234 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=CREATE cap_fp=0"));
        assert_eq!(p.item, 1);
        assert_eq!(p.name.as_deref(), Some("/tmp/a b.sh"));
        assert_eq!(p.inode, Some(1234));
        assert_eq!(p.dev.as_deref(), Some("fe:01"));
        assert_eq!(p.mode, Some(0o100755));
        assert_eq!(p.nametype, "CREATE");
        let null = decode_path(&rec(
            "type=PATH msg=audit(1.000:1): item=0 name=(null) inode=5 nametype=UNKNOWN",
        ));
        assert_eq!((null.name, null.mode), (None, None));
    }

    #[test]
    fn proctitle_hex_and_quoted() {
        let hex =
            rec("type=PROCTITLE msg=audit(1.000:1): proctitle=636174002F6574632F70617373776400");
        assert_eq!(
            decode_proctitle(hex.value("proctitle").unwrap()),
            "cat /etc/passwd"
        );
        let q = rec("type=PROCTITLE msg=audit(1.000:1): proctitle=\"bash\"");
        assert_eq!(decode_proctitle(q.value("proctitle").unwrap()), "bash");
    }

    #[test]
    fn sockaddr_families() {
        let cases: &[(&str, bool, SockAddr)] = &[
            (
                "02001F907F0000010000000000000000",
                true,
                SockAddr::Inet {
                    addr: "127.0.0.1".into(),
                    port: 8080,
                },
            ),
            (
                "0002D903000000000000000000000000",
                false,
                SockAddr::Inet {
                    addr: "0.0.0.0".into(),
                    port: 55555,
                },
            ),
            (
                "0A0000500000000020010DB8000000000000000000000001000000000000",
                true,
                SockAddr::Inet6 {
                    addr: "2001:db8::1".into(),
                    port: 80,
                },
            ),
            (
                "01002F72756E2F646275732F73797374656D5F6275735F736F636B657400",
                true,
                SockAddr::Unix {
                    path: "/run/dbus/system_bus_socket".into(),
                },
            ),
            (
                "0100002F746D702F2E5831312D756E69782F5830",
                true,
                SockAddr::Unix {
                    path: "@/tmp/.X11-unix/X0".into(),
                },
            ),
            ("0100", true, SockAddr::Unix { path: "".into() }),
            (
                "100000003A0B000000000000",
                true,
                SockAddr::Netlink { pid: 2874 },
            ),
            (
                "1100030000000000",
                true,
                SockAddr::Other {
                    number: 17,
                    raw: "1100030000000000".into(),
                },
            ),
            (
                "02",
                true,
                SockAddr::Other {
                    number: 0,
                    raw: "02".into(),
                },
            ),
            (
                "zz00",
                true,
                SockAddr::Other {
                    number: 0,
                    raw: "zz00".into(),
                },
            ),
            (
                "0200",
                true,
                SockAddr::Other {
                    number: 2,
                    raw: "0200".into(),
                },
            ),
        ];
        for (hex, le, want) in cases {
            assert_eq!(&decode_sockaddr(hex, *le), want, "{hex}");
        }
        assert_eq!(
            decode_sockaddr("02001F907F0000010000000000000000", true).to_string(),
            "127.0.0.1:8080"
        );
    }

    #[test]
    fn event_views_and_big_endian_arch() {
        let lines = [
            "type=SYSCALL msg=audit(1708028025.033:10): arch=80000015 syscall=327 success=yes exit=0 a0=3 a1=33ee202d0 a2=10 a3=7fffe9628078 items=0 ppid=2649 pid=2650 comm=\"nc\" exe=\"/usr/bin/nc.openbsd\" key=(null)",
            "type=SOCKADDR msg=audit(1708028025.033:10): saddr=0002D903000000000000000000000000",
            "type=PATH msg=audit(1708028025.033:10): item=1 name=\"b\" nametype=CREATE",
            "type=PATH msg=audit(1708028025.033:10): item=0 name=\"a\" nametype=PARENT",
            "type=CWD msg=audit(1708028025.033:10): cwd=2F726F6F742F6D7920646972",
            "type=PROCTITLE msg=audit(1708028025.033:10): proctitle=6E63002D6C002D70003535353535",
        ];
        let records: Vec<Record> = lines.iter().map(|l| rec(l)).collect();
        let ev = build_event(10, 7, records);
        assert_eq!(
            ev.sockaddr,
            Some(SockAddr::Inet {
                addr: "0.0.0.0".into(),
                port: 55555
            })
        );
        assert_eq!(ev.cwd.as_deref(), Some("/root/my dir"));
        assert_eq!(ev.proctitle.as_deref(), Some("nc -l -p 55555"));
        let items: Vec<u32> = ev.paths.iter().map(|p| p.item).collect();
        assert_eq!(items, vec![0, 1]);
        assert_eq!(ev.records.len(), 6);
        assert_eq!(ev.syscall.unwrap().name, None, "s390x has no table");
        assert_eq!(ev.execve, None);
    }
}

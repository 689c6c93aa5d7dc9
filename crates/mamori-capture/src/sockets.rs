//! Names sockets the way strace's `-yy` does (`TCP:[127.0.0.1:8080]` for a listening socket,
//! `TCP:[127.0.0.1:8080->127.0.0.1:41674]` for a connection), for descriptors whose link in
//! `/proc/<pid>/fd` only says `socket:[inode]`: sockets opened before capture started, such as a
//! server's listening socket. The addresses come from the process's network namespace, in
//! `/proc/<pid>/net/{tcp,tcp6,udp,udp6}`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// TCP state number of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// The inode of a `socket:[inode]` link.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// How often a namespace's tables may be read again for a socket they did not name.
const REREAD_AFTER: Duration = Duration::from_secs(1);
/// Most network namespaces remembered.
const NAMESPACES: usize = 256;

/// Socket names per network namespace, read again at most once a second. Most unnamed sockets
/// a lookup meets are not TCP or UDP (the UNIX sockets of `runc`, syslog clients, D-Bus), and
/// reading `/proc/net/tcp` walks the kernel's whole connection table: reading it for each of
/// them made `docker exec` cost the agent milliseconds.
#[derive(Debug, Default)]
pub struct SocketNamer {
    namespaces: HashMap<String, (Instant, HashMap<u64, String>)>,
}

impl SocketNamer {
    /// The name of socket `inode` as process `pid`'s network namespace shows it.
    pub fn name(&mut self, proc_root: &str, pid: u32, inode: u64) -> Option<String> {
        let namespace = std::fs::read_link(format!("{proc_root}/{pid}/ns/net")).ok()?;
        let namespace = namespace.to_string_lossy().into_owned();
        if let Some((read_at, names)) = self.namespaces.get(&namespace) {
            if let Some(name) = names.get(&inode) {
                return Some(name.clone());
            }
            if read_at.elapsed() < REREAD_AFTER {
                return None;
            }
        }
        if self.namespaces.len() >= NAMESPACES {
            self.namespaces.clear();
        }
        let names = socket_names(proc_root, pid);
        let found = names.get(&inode).cloned();
        self.namespaces.insert(namespace, (Instant::now(), names));
        found
    }
}

/// Socket names by inode for the network namespace of process `pid`.
pub fn socket_names(proc_root: &str, pid: u32) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for (file, kind) in [
        ("tcp", "TCP"),
        ("tcp6", "TCPv6"),
        ("udp", "UDP"),
        ("udp6", "UDPv6"),
    ] {
        if let Ok(table) = std::fs::read_to_string(format!("{proc_root}/{pid}/net/{file}")) {
            names.extend(parse_table(&table, kind));
        }
    }
    names
}

/// Rows of one `/proc/net/{tcp,udp}[6]` table: inode and socket name.
fn parse_table<'a>(table: &'a str, kind: &'a str) -> impl Iterator<Item = (u64, String)> + 'a {
    table.lines().skip(1).filter_map(move |row| {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (local, remote, state) = (cols.get(1)?, cols.get(2)?, cols.get(3)?);
        let inode: u64 = cols.get(9)?.parse().ok()?;
        if inode == 0 {
            return None; // a connection in TIME_WAIT belongs to no descriptor
        }
        let local = endpoint(local)?;
        let remote = endpoint(remote)?;
        // a TCP socket that is not listening, or a UDP socket with a peer, is a connection
        let unconnected = if kind.starts_with("TCP") {
            *state == TCP_LISTEN
        } else {
            remote.ends_with(":0")
        };
        let name = if unconnected {
            format!("{kind}:[{local}]")
        } else {
            format!("{kind}:[{local}->{remote}]")
        };
        Some((inode, name))
    })
}

/// `0100007F:1F90` → `127.0.0.1:8080`; 32 hex digits → `[::1]:8080`. The kernel prints each
/// 32-bit word of the address as a host-order number, so its bytes are the word's native bytes.
fn endpoint(text: &str) -> Option<String> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(8 * i..8 * i + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    match addr.len() {
        8 => Some(format!("{}:{port}", Ipv4Addr::from(word(0)?))),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[4 * i..4 * i + 4].copy_from_slice(&word(i)?);
            }
            Some(format!("[{}]:{port}", Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// The name of a connection accepted on `listening` (`TCP:[0.0.0.0:8080]`) from `peer`
/// (`127.0.0.1:41674`): `TCP:[0.0.0.0:8080->127.0.0.1:41674]`. The local address is the
/// listening socket's, which may be a wildcard where strace would show the address the client
/// reached; the port, which is what rules and the request signal read, is the same.
pub fn accepted_name(listening: &str, peer: &str) -> Option<String> {
    let (kind, inner) = listening.split_once(":[")?;
    let local = inner.strip_suffix(']')?;
    if local.contains("->") || !kind.starts_with("TCP") {
        return None;
    }
    Some(format!("{kind}:[{local}->{peer}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows as Linux 6.x prints them (header, a listening socket, a connection, a TIME_WAIT).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:A2AA 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:1F90 0100007F:A2AB 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000\n";

    #[test]
    fn proc_net_rows_become_strace_style_names() {
        let names: HashMap<u64, String> = parse_table(TCP, "TCP").collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[&4242], "TCP:[127.0.0.1:8080]");
        assert_eq!(names[&4343], "TCP:[127.0.0.1:8080->127.0.0.1:41642]");
    }

    #[test]
    fn ipv6_and_udp_rows() {
        let tcp6 = "header\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1\n";
        let names: HashMap<u64, String> = parse_table(tcp6, "TCPv6").collect();
        assert_eq!(names[&77], "TCPv6:[[::1]:8080]");
        let udp = "header\n  10: 00000000:0035 00000000:0000 07 0:0 0:0 0 0 0 88 2\n";
        let names: HashMap<u64, String> = parse_table(udp, "UDP").collect();
        assert_eq!(names[&88], "UDP:[0.0.0.0:53]");
    }

    #[test]
    fn a_namespace_is_read_again_at_most_once_a_second() {
        let root = std::env::temp_dir().join(format!("mamori-sockets-{}", std::process::id()));
        std::fs::create_dir_all(root.join("7/ns")).expect("proc dirs");
        std::fs::create_dir_all(root.join("7/net")).expect("proc dirs");
        let link = root.join("7/ns/net");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("net:[4026531840]", &link).expect("ns link");
        std::fs::write(root.join("7/net/tcp"), TCP).expect("tcp table");
        let proc_root = root.to_string_lossy().into_owned();
        let mut namer = SocketNamer::default();
        assert_eq!(
            namer.name(&proc_root, 7, 4242).as_deref(),
            Some("TCP:[127.0.0.1:8080]")
        );
        // a socket the tables do not name (a UNIX socket): not read again within the second
        let more = format!("{TCP}   3: 0100007F:1F91 00000000:0000 0A 0:0 0:0 0 0 0 5555 1\n");
        std::fs::write(root.join("7/net/tcp"), more).expect("tcp table");
        assert_eq!(namer.name(&proc_root, 7, 5555), None);
        assert_eq!(
            namer.name(&proc_root, 7, 4343).as_deref(),
            Some("TCP:[127.0.0.1:8080->127.0.0.1:41642]")
        );
        std::fs::remove_dir_all(&root).expect("clean up");
    }

    #[test]
    fn an_accepted_connection_is_named_after_its_listening_socket() {
        assert_eq!(
            accepted_name("TCP:[0.0.0.0:8080]", "127.0.0.1:41674").as_deref(),
            Some("TCP:[0.0.0.0:8080->127.0.0.1:41674]")
        );
        assert_eq!(
            accepted_name("TCPv6:[[::]:8080]", "[::1]:5000").as_deref(),
            Some("TCPv6:[[::]:8080->[::1]:5000]")
        );
        assert_eq!(accepted_name("socket:[4242]", "127.0.0.1:1"), None);
        assert_eq!(accepted_name("UNIX:[/run/x.sock]", "x"), None);
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("/etc/passwd"), None);
    }
}

//! Names sockets the way strace's `-yy` does (`TCP:[127.0.0.1:8080]` for a listening socket,
//! `TCP:[127.0.0.1:8080->127.0.0.1:41674]` for a connection), for descriptors whose link in
//! `/proc/<pid>/fd` only says `socket:[inode]`: sockets opened before capture started, such as a
//! server's listening socket. The addresses come from the process's network namespace, in
//! `/proc/<pid>/net/{tcp,tcp6,udp,udp6}`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// TCP state number of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// The inode of a `socket:[inode]` link.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
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

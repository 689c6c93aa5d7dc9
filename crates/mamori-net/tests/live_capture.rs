//! Live capture on a veth pair between two network namespaces the test creates (so no host
//! interface, address or route is touched): a bounded number of UDP packets is sent across, the
//! capture with filter `udp port P` must see exactly those, and a bad filter or interface must
//! give a clear error. Needs root (`ip netns`, raw sockets); skipped with a message otherwise.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use mamori_net::live::{LiveError, PacketCapture};
use mamori_net::packet::{decode, L3};

const PACKETS: usize = 200;

fn is_root() -> bool {
    // Effective uid: the second field of `Uid:` in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair; removed on drop, also when the test panics.
struct Lab {
    ns: [String; 2],
    veth: [String; 2],
    addr: [Ipv4Addr; 2],
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let id = std::process::id();
        let subnet = (id % 200) as u8 + 20;
        let lab = Lab {
            ns: [format!("mamori-lc{id}-a"), format!("mamori-lc{id}-b")],
            veth: [format!("mlc{id}a"), format!("mlc{id}b")],
            addr: [
                Ipv4Addr::new(10, 237, subnet, 1),
                Ipv4Addr::new(10, 237, subnet, 2),
            ],
        };
        for ns in &lab.ns {
            ip(&["netns", "add", ns])?;
        }
        let [va, vb] = &lab.veth;
        ip(&[
            "link", "add", va, "netns", &lab.ns[0], "type", "veth", "peer", "name", vb, "netns",
            &lab.ns[1],
        ])?;
        for i in 0..2 {
            let ns = &lab.ns[i];
            let cidr = format!("{}/24", lab.addr[i]);
            ip(&["-n", ns, "addr", "add", &cidr, "dev", &lab.veth[i]])?;
            ip(&["-n", ns, "link", "set", &lab.veth[i], "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Runs `f` on a new thread that has joined network namespace `ns`.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

#[test]
fn missing_interface_lists_the_available_ones() {
    let err = PacketCapture::open("mamori-no-such-if0", None, 256, false).unwrap_err();
    match &err {
        LiveError::NoSuchInterface { interface, .. } => {
            assert_eq!(interface, "mamori-no-such-if0")
        }
        // Without libpcap's device list (no permission to list), opening still fails clearly.
        LiveError::Open { interface, .. } => assert_eq!(interface, "mamori-no-such-if0"),
        other => panic!("unexpected error: {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("`mamori-no-such-if0`"), "{text}");
    if matches!(err, LiveError::NoSuchInterface { .. }) {
        assert!(text.contains("(available: "), "{text}");
    }
}

#[test]
fn captures_exactly_the_filtered_packets() {
    if !is_root() {
        eprintln!("skipping: live capture needs root (network namespaces and raw sockets)");
        return;
    }
    let lab = match Lab::new() {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("skipping: cannot build the namespace lab: {e}");
            return;
        }
    };
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let (src, dst) = (lab.addr[0], lab.addr[1]);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();

    let capture = {
        let (iface, stop, seen) = (lab.veth[0].clone(), Arc::clone(&stop), Arc::clone(&seen));
        in_netns(&lab.ns[0], move || {
            let bad = PacketCapture::open(&iface, Some("udp port"), 256, false).unwrap_err();
            let filter = format!("udp port {port}");
            let mut cap = PacketCapture::open(&iface, Some(&filter), 256, false).unwrap();
            cap.set_stop_flag(stop);
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            while let Some(p) = cap.next_packet().unwrap() {
                let m = decode(p.linktype, p.ts_ns, p.orig_len, p.data).unwrap();
                let seq = p
                    .data
                    .get(42..46)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                got.push((m, seq));
                seen.fetch_add(1, Ordering::Relaxed);
            }
            (bad, got, cap.stats().unwrap())
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("capture did not start");

    let sender = in_netns(&lab.ns[0], move || {
        let sock = UdpSocket::bind((src, 0)).unwrap();
        // Resolve the peer's MAC first (ARP crosses the capture and must be filtered out),
        // with a packet to a port the filter does not take.
        sock.send_to(b"warm-up", (dst, port.wrapping_add(1)))
            .unwrap();
        thread::sleep(Duration::from_millis(300));
        for seq in 0..PACKETS as u32 {
            let mut payload = seq.to_be_bytes().to_vec();
            payload.resize(16 + seq as usize % 64, 0x5a);
            sock.send_to(&payload, (dst, port)).unwrap();
            if seq % 50 == 49 {
                thread::sleep(Duration::from_millis(5));
            }
        }
    });
    sender.join().expect("sender");

    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.load(Ordering::Relaxed) < PACKETS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    // Give stragglers a chance to show up, then stop: the read timeout must end the capture.
    thread::sleep(Duration::from_millis(300));
    let stopped_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let (bad, got, stats) = capture.join().expect("capture thread");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        stopped_at.elapsed()
    );

    let text = bad.to_string();
    assert!(matches!(bad, LiveError::BadFilter { .. }), "{text}");
    assert!(
        text.starts_with("bad capture filter `udp port`: "),
        "{text}"
    );
    assert!(
        text.len() > "bad capture filter `udp port`: ".len(),
        "{text}"
    );

    assert_eq!(got.len(), PACKETS, "captured packets");
    for (i, (m, seq)) in got.iter().enumerate() {
        assert_eq!(m.l3, L3::Ipv4);
        assert_eq!((m.ip_proto, m.dst_port), (17, port));
        assert_eq!(m.src_ip, Some(IpAddr::V4(src)));
        assert_eq!(m.dst_ip, Some(IpAddr::V4(dst)));
        assert_eq!(*seq, Some(i as u32), "packets in order");
        assert_eq!(m.payload_len as usize, 16 + i % 64);
    }
    assert!(stats.received >= PACKETS as u64, "{stats:?}");
    assert_eq!(stats.dropped_by_kernel, 0, "{stats:?}");
    drop(lab);
}

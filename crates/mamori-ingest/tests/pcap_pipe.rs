//! Captures from pipes: `-` for standard input, a FIFO, a child's stdout; gzip recognised by its
//! magic whatever the name, and every byte read once (a pipe cannot be read again).

mod pcap_common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mamori_ingest::pcap::CaptureReader;
use pcap_common::{classic, gzip, pcapng, read_all};

const CHILD_ENV: &str = "MAMORI_PCAP_STDIN_CHILD";

/// Not a test of its own: what the child process of [`dash_reads_standard_input`] runs (this
/// test binary re-run with the variable set, its stdin a pipe). Without the variable it does
/// nothing.
#[test]
fn stdin_child() {
    let Some(lenient) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut r = CaptureReader::open(Path::new("-"), lenient == "1").expect("opens stdin");
    let n = read_all(&mut r).expect("reads stdin").len();
    println!(
        "CHILD packets={n} name={} format={:?}",
        r.source_name(),
        r.format()
    );
}

fn run_child(input: Vec<u8>) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "stdin_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written in small pieces from another thread: the reader sees a real, slow pipe.
    let writer = std::thread::spawn(move || {
        for chunk in input.chunks(333) {
            if stdin.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("child runs");
    writer.join().expect("writer");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest may print the test's name on the same line.
    text.lines()
        .find_map(|l| l.find("CHILD ").map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("no result line in {text}"))
}

#[test]
fn dash_reads_standard_input() {
    let plain = classic(300).bytes;
    let line = run_child(gzip(&plain));
    assert!(
        line.starts_with("CHILD packets=300 name=<stdin> format=Pcap"),
        "{line}"
    );
    let line = run_child(pcapng(50).bytes);
    assert_eq!(line, "CHILD packets=50 name=<stdin> format=Pcapng");
}

#[test]
fn fifo_with_gzip_content_and_a_plain_name() {
    let dir = std::env::temp_dir().join(format!("mamori-pcap-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("cap.pcap");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let gz = gzip(&classic(500).bytes);
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open fifo for writing");
        for chunk in gz.chunks(1000) {
            f.write_all(chunk).expect("write fifo");
        }
    });
    let mut r = CaptureReader::open(&fifo, false).expect("opens the fifo");
    assert_eq!(read_all(&mut r).expect("reads").len(), 500);
    writer.join().expect("writer");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn child_stdout_pipe() {
    let dir = std::env::temp_dir().join(format!("mamori-pcap-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("cap.bin");
    std::fs::write(&file, gzip(&pcapng(120).bytes)).expect("write");
    let mut child = Command::new("cat")
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut r = CaptureReader::new(Box::new(stdout), "cat", true).expect("opens");
    assert_eq!(read_all(&mut r).expect("reads").len(), 120);
    assert!(r.skipped().is_empty());
    assert!(child.wait().expect("cat ends").success());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

//! Memory caps (line length, calls waiting for their other half) and streams read in small
//! chunks.

use std::io::Read;

use mamori_ingest::{
    open_stream, EventReader, Format, SkipAt, DEFAULT_MAX_LINE, DEFAULT_MAX_PENDING,
};

#[test]
fn defaults() {
    assert_eq!(DEFAULT_MAX_LINE, 1 << 20);
    assert_eq!(DEFAULT_MAX_PENDING, 65_536);
}

/// A `Read` that yields at most `chunk` bytes per call, as a pipe may.
struct Trickle {
    data: Vec<u8>,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(self.chunk).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data.drain(..n);
        Ok(n)
    }
}

/// A line much longer than the cap, delivered in small pieces, is read past and reported with its
/// length; the lines around it are kept.
#[test]
fn long_lines_are_capped_and_read_past_in_pieces() {
    let mut text = b"1 getpid() = 1\n2 write(1, \"".to_vec();
    text.extend(std::iter::repeat_n(b'y', 200_000));
    text.extend_from_slice(b"\", 200000) = 200000\n3 getppid() = 1\n4 close(1) = 0");
    let input = std::io::BufReader::with_capacity(
        4096,
        Trickle {
            data: text,
            chunk: 1000,
        },
    );
    let mut r = EventReader::new(input, "t.strace", Format::Strace, true).with_max_line(100);
    let names: Vec<String> = r.by_ref().map(|e| e.unwrap().syscall).collect();
    assert_eq!(names, ["getpid", "getppid", "close"]);
    assert_eq!(r.lines_read(), 4);
    assert_eq!(r.skipped().counts().get("line too long"), Some(&1));
    let ex = &r.skipped().examples()[0];
    assert_eq!(ex.at, SkipAt::Line(2));
    assert!(ex.message.contains("limit of 100 bytes"), "{}", ex.message);
    assert!(ex.message.contains("200031 bytes"), "{}", ex.message);
    // A line exactly at the cap is fine.
    let line = format!("1 write(1, \"{}\", 1) = 1\n", "z".repeat(50));
    let cap = line.len() - 1;
    let events: Vec<_> = EventReader::new(line.as_bytes(), "t", Format::Strace, false)
        .with_max_line(cap)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(events.len(), 1);
    let err = EventReader::new(line.as_bytes(), "t", Format::Strace, false)
        .with_max_line(cap - 1)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("t:1: malformed strace line (line too long)"));
}

#[test]
fn strace_pending_calls_are_capped_and_evictions_counted() {
    let threads = 1000u32;
    let cap = 64;
    let mut text = String::new();
    for pid in 1..=threads {
        text.push_str(&format!(
            "{pid}  10:00:00.{pid:06} read(3</f>,  <unfinished ...>\n"
        ));
    }
    // The newest calls resume; evicted ones resume as calls of their own.
    for pid in (threads - 9..=threads).chain([1, 2]) {
        text.push_str(&format!(
            "{pid}  10:00:01 <... read resumed>\"x\", 1) = 1\n"
        ));
    }
    let mut r = EventReader::new(text.as_bytes(), "t", Format::Strace, false).with_max_pending(cap);
    let mut events = Vec::new();
    let mut most = 0;
    while let Some(e) = r.next() {
        events.push(e.unwrap());
        most = most.max(r.pending_calls());
    }
    assert!(most <= cap, "{most}");
    assert_eq!(r.pending_calls(), 0);
    assert_eq!(r.evicted_pending(), u64::from(threads) - cap as u64);
    // Every unfinished call is an event once; pids 1 and 2 also resume on their own.
    assert_eq!(events.len(), threads as usize + 2);
    // The oldest went first, incomplete.
    assert_eq!(events[0].pid, Some(1));
    assert_eq!(events[0].ret, None);
    let resumed: Vec<u32> = events
        .iter()
        .filter(|e| e.ret == Some(1))
        .filter_map(|e| e.pid)
        .collect();
    assert_eq!(resumed.len(), 12);
    assert!(r.skipped().is_empty());
}

#[test]
fn lidds_enter_halves_are_capped_and_evictions_counted() {
    let threads = 500u32;
    let cap = 10;
    let mut text = String::new();
    for tid in 1..=threads {
        text.push_str(&format!("{tid} 0 1 app {tid} read > fd=3 size=1 \n"));
    }
    for tid in threads - 4..=threads {
        text.push_str(&format!("{} 0 1 app {tid} read < res=1 \n", 10_000 + tid));
    }
    let mut r =
        EventReader::new(text.as_bytes(), "t.sc", Format::LidDs, false).with_max_pending(cap);
    let mut n = 0;
    while let Some(e) = r.next() {
        e.unwrap();
        n += 1;
        assert!(r.pending_calls() <= cap);
    }
    assert_eq!(n, threads as usize);
    assert_eq!(r.evicted_pending(), u64::from(threads - cap as u32));
    // Without a cap that low nothing is evicted.
    let mut r = EventReader::new(text.as_bytes(), "t.sc", Format::LidDs, false);
    assert_eq!(r.by_ref().count(), threads as usize);
    assert_eq!(r.evicted_pending(), 0);
}

#[test]
fn streams_read_in_tiny_chunks_lose_nothing() {
    let text = "\
1 10:00:00.000001 openat(AT_FDCWD</>, \"/etc/x\", O_RDONLY) = 3</etc/x>
1 10:00:00.000002 read(3</etc/x>, \"abc\", 3) = 3
1 10:00:00.000003 close(3</etc/x>) = 0
";
    for chunk in [1, 2, 3, 7] {
        let mut r = open_stream(
            Trickle {
                data: text.as_bytes().to_vec(),
                chunk,
            },
            "<t>",
            None,
            false,
        )
        .unwrap();
        assert_eq!(r.format(), Format::Strace);
        let names: Vec<String> = r.by_ref().map(|e| e.unwrap().syscall).collect();
        assert_eq!(names, ["openat", "read", "close"], "chunk {chunk}");
        // Gzip in the same small chunks: recognised by its magic bytes.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut r = open_stream(Trickle { data: gz, chunk }, "<t>", None, false).unwrap();
        assert_eq!(r.by_ref().count(), 3, "gzip chunk {chunk}");
    }
}

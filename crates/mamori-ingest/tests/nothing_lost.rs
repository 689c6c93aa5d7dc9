//! Issue 16, "nothing lost without a word": pipes and stdin, truncated gzip, long lines, strace
//! timestamp forms, error messages.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use mamori_ingest::{open_path, EventReader, Format, IngestError, SkipAt};

fn motion(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/motion")
        .join(name)
}

fn decompressed(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// How many items, all `Ok`.
fn ok_count<T, E: std::fmt::Debug>(items: impl Iterator<Item = Result<T, E>>) -> usize {
    items.collect::<Result<Vec<T>, E>>().unwrap().len()
}

/// Events (and lines) of `bytes` read as strace from memory.
fn count_events(bytes: &[u8], lenient: bool) -> (usize, u64) {
    let mut r = EventReader::new(bytes, "mem", Format::Strace, lenient);
    let n = ok_count(r.by_ref());
    (n, r.lines_read())
}

/// Writes `bytes` into a real pipe from another thread and reads it back through `open_path` of
/// `/dev/fd/N`, as a shell's process substitution `<(cat FILE)` does.
fn through_pipe(bytes: Vec<u8>, format: Option<Format>) -> (usize, u64, Format) {
    let (rx, mut tx) = std::io::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader may stop early on error; a broken pipe is then fine.
        let _ = tx.write_all(&bytes);
    });
    let path = format!("/dev/fd/{}", rx.as_raw_fd());
    let mut reader = open_path(&path, format, false).unwrap();
    let fmt = reader.format();
    let n = ok_count(reader.by_ref());
    let lines = reader.lines_read();
    assert!(reader.skipped().is_empty(), "{}", reader.skipped());
    drop(reader);
    writer.join().unwrap();
    drop(rx);
    (n, lines, fmt)
}

#[test]
fn pipe_loses_nothing_to_format_detection() {
    let gz = motion("api-tamper.strace.gz");
    let plain = decompressed(&gz);
    let (want, want_lines) = count_events(&plain, false);
    assert!(want > 5_000, "{want}");
    // Plain text, detected.
    assert_eq!(
        through_pipe(plain.clone(), None),
        (want, want_lines, Format::Strace)
    );
    // Plain text, format named.
    assert_eq!(
        through_pipe(plain, Some(Format::Strace)),
        (want, want_lines, Format::Strace)
    );
    assert_eq!(Format::detect_file(&gz).unwrap(), Format::Strace);
    // Gzip through a pipe: no `.gz` name, recognised by its magic bytes.
    let compressed = std::fs::read(&gz).unwrap();
    assert_eq!(
        through_pipe(compressed, None),
        (want, want_lines, Format::Strace)
    );
}

/// The child half of [`dash_reads_stdin`]: reads `-` and prints what it found.
#[test]
fn stdin_child() {
    if std::env::var_os("MAMORI_INGEST_STDIN_CHILD").is_none() {
        return; // only meaningful when started by `dash_reads_stdin`
    }
    let mut reader = open_path("-", None, false).unwrap();
    assert_eq!(reader.source(), "<stdin>");
    let n = ok_count(reader.by_ref());
    println!(
        "STDIN-RESULT {} {} {}",
        reader.format(),
        n,
        reader.lines_read()
    );
}

#[test]
fn dash_reads_stdin() {
    let gz = motion("exfil.strace.gz");
    let (want, lines) = count_events(&decompressed(&gz), false);
    let compressed = std::fs::read(&gz).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_child", "--nocapture", "--test-threads=1"])
        .env("MAMORI_INGEST_STDIN_CHILD", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&compressed);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let want_line = format!("STDIN-RESULT strace {want} {lines}");
    assert!(
        text.lines().any(|l| l.ends_with(&want_line)),
        "{want_line}\n{text}"
    );
}

fn truncated_copy(name: &str, keep: f64) -> (PathBuf, Vec<u8>) {
    let gz = motion(name);
    let bytes = std::fs::read(&gz).unwrap();
    let cut = (bytes.len() as f64 * keep) as usize;
    let dir = std::env::temp_dir().join(format!(
        "mamori-ingest-trunc-{}-{name}-{cut}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..cut]).unwrap();
    // What decompresses before the cut, up to its last whole line.
    let mut prefix = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(&bytes[..cut]);
    let mut chunk = [0u8; 8192];
    loop {
        match dec.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => prefix.extend_from_slice(&chunk[..n]),
        }
    }
    let whole = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    prefix.truncate(whole);
    (path, prefix)
}

#[test]
fn truncated_gzip_keeps_what_decompressed_in_lenient_mode() {
    // 0.00004: cut before the first line, which format detection meets (the format then comes
    // from the name); 0.0005: within the first lines.
    for keep in [0.00004, 0.0005, 0.5, 0.97] {
        let (path, prefix) = truncated_copy("dropper.strace.gz", keep);
        let (want, want_lines) = count_events(&prefix, true);
        assert!(keep < 0.1 || want > 1000, "{want}");

        let mut reader = open_path(&path, None, true).unwrap();
        let got = ok_count(reader.by_ref());
        assert_eq!(got, want, "events kept at {keep}");
        assert_eq!(reader.lines_read(), want_lines);
        let skipped = reader.skipped();
        assert_eq!(
            skipped.counts().get("truncated input"),
            Some(&1),
            "{skipped}"
        );
        let ex = &skipped.examples()[0];
        assert_eq!(ex.at, SkipAt::Line(want_lines + 1));
        assert!(ex.message.contains("rest of the file"), "{}", ex.message);

        // Strict: an error naming the file and the line where reading stopped.
        let mut strict = open_path(&path, None, false).unwrap();
        let errs: Vec<IngestError> = strict.by_ref().filter_map(Result::err).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path(), path.display().to_string());
        assert_eq!(errs[0].line(), want_lines + 1);
        assert!(
            errs[0]
                .to_string()
                .contains(&format!(":{}:", want_lines + 1)),
            "{}",
            errs[0]
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

#[test]
fn an_overlong_line_is_reported_not_parsed() {
    let mut text = b"1 read(0, \"\", 1) = 0\n2 write(1, \"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 3 << 20));
    text.extend_from_slice(b"\", 3145728) = 3145728\n3 close(1) = 0\n");
    let mut lenient = EventReader::new(&text[..], "big.strace", Format::Strace, true);
    let names: Vec<String> = lenient.by_ref().map(|e| e.unwrap().syscall).collect();
    assert_eq!(names, ["read", "close"]);
    assert_eq!(lenient.lines_read(), 3);
    let skipped = lenient.skipped();
    assert_eq!(skipped.counts().get("line too long"), Some(&1), "{skipped}");
    assert_eq!(skipped.examples()[0].at, SkipAt::Line(2));

    let results: Vec<_> =
        EventReader::new(&text[..], "big.strace", Format::Strace, false).collect();
    assert_eq!(results.len(), 3);
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.line(), 2);
    let msg = err.to_string();
    assert!(msg.starts_with("big.strace:2: "), "{msg}");
    assert!(msg.contains("1048576"), "names the limit: {msg}");
}

/// The error and its sources as anyhow's `{:#}` prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

#[test]
fn opening_errors_name_the_path_once_and_the_os_error_once() {
    let err = open_path("/nonexistent/x.strace", Some(Format::Strace), false)
        .err()
        .unwrap();
    let shown = chain(&err);
    assert!(
        shown.starts_with("/nonexistent/x.strace: cannot open: "),
        "{shown}"
    );
    let os = std::io::Error::from_raw_os_error(2).to_string(); // ENOENT
    assert_eq!(shown.matches(os.as_str()).count(), 1, "{shown}");
    assert!(!shown.contains(":0:"), "{shown}");
    let err = open_path("/nonexistent/y.strace", None, false)
        .err()
        .unwrap();
    assert!(
        chain(&err).starts_with("/nonexistent/y.strace: cannot open: "),
        "{}",
        chain(&err)
    );
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

#[test]
fn messages_escape_control_bytes() {
    let cases: [(Format, &str); 7] = [
        (Format::Strace, "1 12:3\u{1b}[31m4:56 read(0) = 0\n"),
        (Format::Strace, "1 \u{1b}]0;owned\u{7}(0) = 0\n"),
        (Format::Strace, "1 read(0) = \u{0}\u{1b}[2J\n"),
        (Format::Adfa, "6 6 \u{1b}[2J 3\n"),
        (
            Format::LidDs,
            "1 0 2 p 2 read > fd=1 \n1\u{1b} 0 2 p 2 read < res=1 \n",
        ),
        (Format::Jsonl, "{\"syscall\":\"read\",\"\\u001b[31m\":1}\n"),
        (
            Format::Falco,
            "{\"evt.type\":\"read\",\"evt.time\":\"\\u001b[2J\"}\n",
        ),
    ];
    for (format, text) in cases {
        let errs: Vec<IngestError> = EventReader::new(text.as_bytes(), "t", format, false)
            .filter_map(Result::err)
            .collect();
        assert_eq!(errs.len(), 1, "{format}: {text:?} {errs:?}");
        let msg = errs[0].to_string();
        assert!(!has_control(&msg), "{format}: {msg:?}");
        let mut lenient = EventReader::new(text.as_bytes(), "t", format, true);
        lenient.by_ref().for_each(drop);
        for ex in lenient.skipped().examples() {
            assert!(!has_control(&ex.message), "{format}: {:?}", ex.message);
        }
        assert!(!has_control(&lenient.skipped().to_string()));
    }
    // Long echoed tokens are clipped.
    let long = format!("1 12:34:{} read(0) = 0\n", "9".repeat(10_000));
    let err = EventReader::new(long.as_bytes(), "t", Format::Strace, false)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().len() < 400, "{}", err.to_string().len());
}

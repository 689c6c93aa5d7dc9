//! Malformed input: strict mode names path and line; lenient mode counts and keeps going.

use std::io::Write;

use mamori_ingest::{open_path, EventReader, Format, IngestError, SkipAt};

const STRACE: &str = "\
100  10:00:00.000001 openat(AT_FDCWD</>, \"/etc/localtime\", O_RDONLY) = 3</etc/localtime>
100  10:00:00.000002 read(3</etc/localtime>, \"TZif
100  10:00:00.000003 close(3</etc/localtime>) = 0
garbage line
100  10:00:00.000004 write(1</dev/pts/0>, \"ok\\n\", 3) = 3
";

#[test]
fn strict_mode_reports_line() {
    let results: Vec<_> =
        EventReader::new(STRACE.as_bytes(), "bad.strace", Format::Strace, false).collect();
    let errors: Vec<&IngestError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].line(), 2);
    assert_eq!(errors[0].path(), "bad.strace");
    let msg = errors[0].to_string();
    assert!(
        msg.starts_with("bad.strace:2: malformed strace line"),
        "{msg}"
    );
    assert_eq!(errors[1].line(), 4);
    assert!(errors[1].to_string().contains("not a system call"));
    // Reading went on past the errors.
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
}

#[test]
fn lenient_mode_keeps_every_good_line() {
    let mut reader = EventReader::new(STRACE.as_bytes(), "bad.strace", Format::Strace, true);
    let names: Vec<String> = reader.by_ref().map(|r| r.unwrap().syscall).collect();
    assert_eq!(names, ["openat", "close", "write"]);
    let skipped = reader.skipped();
    assert_eq!(skipped.total(), 2);
    let lines: Vec<SkipAt> = skipped.examples().iter().map(|e| e.at).collect();
    assert_eq!(lines, [SkipAt::Line(2), SkipAt::Line(4)]);
    assert_eq!(skipped.counts().get("unbalanced arguments"), Some(&1));
    assert_eq!(skipped.counts().get("not a system call"), Some(&1));
}

#[test]
fn open_path_errors_and_gzip() {
    let err = open_path("/nonexistent/x.strace", Some(Format::Strace), false)
        .err()
        .unwrap();
    assert_eq!(err.path(), "/nonexistent/x.strace");
    assert!(err.to_string().contains("cannot open"));

    let dir = std::env::temp_dir().join(format!("mamori-ingest-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gz = dir.join("events.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(STRACE.as_bytes()).unwrap();
    enc.finish().unwrap();
    let mut reader = open_path(&gz, None, true).unwrap();
    assert_eq!(reader.format(), Format::Strace);
    assert_eq!(reader.by_ref().count(), 3);
    assert_eq!(reader.skipped().total(), 2);

    let unknown = dir.join("mystery.txt");
    std::fs::write(&unknown, "hello there\n").unwrap();
    let err = open_path(&unknown, None, false).err().unwrap();
    assert!(matches!(err, IngestError::UnknownFormat { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

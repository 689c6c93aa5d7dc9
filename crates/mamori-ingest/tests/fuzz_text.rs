//! Mutation tests: real-looking lines of every text format, mutated at random (bit flips,
//! inserted and deleted bytes, cuts, spliced lines, control bytes, huge numbers, overlong runs),
//! read in strict and lenient mode.
//!
//! Properties: no panic; a strict error names the source and a line within the input; lenient
//! mode yields no error and reads every line; messages carry no raw control characters.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use mamori_ingest::labels::{parse_labels, Expect};
use mamori_ingest::{EventReader, Format, IngestError};
use proptest::prelude::*;
use proptest::sample::Index;

/// Up to 300 lines from the start and the middle of a real recording of motion.
fn strace_seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/motion/paper.strace.gz");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).expect("data/motion"))
            .read_to_string(&mut text)
            .expect("a readable recording");
        let lines: Vec<&str> = text.lines().collect();
        let mid = lines.len() / 2;
        let mut seeds: Vec<String> = lines[..150]
            .iter()
            .chain(&lines[mid..mid + 150])
            .map(|l| l.to_string())
            .collect();
        // Forms the recording lacks: -tt, -r, [pid N], -T, signals.
        seeds.extend(
            [
                "[pid  42] 12:00:00.000001 poll([{fd=3, events=POLLIN}], 1, -1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)",
                "5825  23:59:59.999999 wait4(-1,  <unfinished ...>",
                "5825  00:00:00.000001 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5826",
                "     0.000123 openat(AT_FDCWD</>, \"/etc/localtime\", O_RDONLY|O_CLOEXEC) = 3</etc/localtime> <0.000020>",
                "1234       0.000050 close(3</etc/localtime>) = 0 <0.000008>",
                "11 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=10} ---",
                "10 +++ killed by SIGKILL +++",
                "strace: Process 1234 attached",
            ]
            .map(String::from),
        );
        seeds
    })
}

const FALCO: &[&str] = &[
    r#"{"output":"x","priority":"Notice","rule":"r","time":"2024-01-01T00:00:00.123456789Z","output_fields":{"evt.type":"write","evt.args":"fd=3(<f>/var/log/motion.log) size=64 data=[1:ml1] [NTC] netcam_init ok","fd.name":"/var/log/motion.log","proc.name":"motion","proc.pid":123,"thread.tid":124,"container.id":"abc","evt.time":1700000000123456789,"evt.res":"64"}}"#,
    r#"{"evt.type":"openat","evt.time":"2024-01-01T00:00:01Z","evt.arg.name":"/etc/localtime","evt.arg.fd":"4(<f>/etc/localtime)","evt.arg.flags":"O_RDONLY","evt.rawres":4,"proc.pid":"9","container.id":null}"#,
    r#"{"evt.cpu":0,"evt.dir":"<","evt.num":17,"evt.outputtime":1700000000000000042,"evt.type":"read","proc.name":"motion","thread.tid":9,"evt.args":"res=5 data=hello"}"#,
];

const TRACEE: &[&str] = &[
    r#"{"timestamp":1700000000123456789,"processId":12,"threadId":13,"hostProcessId":4012,"hostThreadId":4013,"processName":"motion","containerId":"","container":{"id":"c0ffee","name":"cam"},"eventName":"openat","returnValue":3,"args":[{"name":"dirfd","type":"int","value":-100},{"name":"pathname","type":"const char*","value":"/etc/localtime"},{"name":"flags","type":"int","value":"O_RDONLY|O_CLOEXEC"}]}"#,
    r#"{"timestamp":1700000000200000000,"processId":7,"threadId":8,"eventName":"close","returnValue":0,"args":[{"name":"fd","type":"int","value":3}]}"#,
    r#"{"processId":7,"threadId":8,"eventName":"sched_process_exit","args":null}"#,
];

const LIDDS: &[&str] = &[
    "1631078867380457267 0 2902771 apache2 2902771 select < res=0 ",
    "1631078867467692105 33 2902774 apache2 2902774 accept > flags=0 ",
    "1631078867467701544 33 2902774 apache2 2902774 accept < fd=12(<4t>192.168.240.3:50140->192.168.240.21:443) tuple=192.168.240.3:50140->192.168.240.21:443 queuepct=0 queuelen=0 queuemax=511 ",
    "1631078867467766934 33 2902774 apache2 2902774 open > ",
    "1631078867467773648 33 2902774 apache2 2902774 open < fd=13(<f>/dev/urandom) name=/dev/urandom flags=4097(O_RDONLY|O_CLOEXEC) mode=0 dev=200073 ",
    "1631078867467776775 33 2902774 apache2 2902774 read > fd=13(<f>/dev/urandom) size=512 ",
    "1631078867467779939 33 2902774 apache2 2902774 read < res=512 data=FftLT3buVlRy8gzj1hpJoeGyzXJAiVvG ",
    "1631078867467709136 33 2902774 apache2 2902774 semop < res=0 nsops=1 sem_num_0=0 sem_op_0=1 sem_flg_0=2(SEM_UNDO) sem_num_1=0 sem_op_1=0 sem_flg_1=0 ",
    "1631078867467820185 33 2902774 apache2 2902774 mmap < res=7F5246360000 vm_size=112448 ",
    "1631078867500000000 33 2902775 apache2 2902775 procexit > status=0 ",
];

const ADFA: &[&str] = &[
    "6 6 63 6 42 120 6 195 120 6 6 114 162 162 114 162 162 114 162",
    "265 265 3 3 3 3 5 5 197 192 6 33 5 3 197",
    "",
    "340 252 1 0",
];

const JSONL: &[&str] = &[
    r#"{"time_ns":1700000000123456789,"pid":1,"tid":2,"process":"motion","container":"abc","syscall":"write","args":["3","line\n\"quoted\""],"fd_path":"/var/log/motion.log","ret":64}"#,
    r#"{"syscall":"read"}"#,
    r#"{"time_ns":5,"pid":4,"tid":5,"syscall":"exit_group","args":[],"ret":null}"#,
];

const LABELS: &[&str] = &[
    "# FROM TO [ATTACKER VICTIM] NAME",
    "1700000000.5 1700000002.25 edit config",
    "1700000010 1700000020 10.0.0.3 * port scan",
    "100\t110\t10.0.0.3\t10.0.0.2\tsyn-flood",
    "00:00:01 00:00:02.5 ps",
    "1795314700.125 1795314760 kill motion # restart",
];

/// One random change to the text.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index, usize),
    Truncate(Index),
    Control(Index, u8),
    Huge(Index),
    LongRun(Index, usize),
    /// The start of one line glued to the end of another.
    Splice(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..24).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (
            any::<Index>(),
            prop_oneof![0u8..0x20, Just(0x7f), Just(0x1b), Just(0)]
        )
            .prop_map(|(i, b)| Mutation::Control(i, b)),
        any::<Index>().prop_map(Mutation::Huge),
        (any::<Index>(), 100usize..6000).prop_map(|(i, n)| Mutation::LongRun(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Splice(a, b)),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::Flip(i, bit) => {
            if !text.is_empty() {
                let k = i.index(text.len());
                text[k] ^= 1 << bit;
            }
        }
        Mutation::Insert(i, b) => {
            let k = at(i, text.len());
            text.insert(k, *b);
        }
        Mutation::Delete(i, n) => {
            let k = at(i, text.len());
            let end = (k + n).min(text.len());
            text.drain(k..end);
        }
        Mutation::Truncate(i) => {
            let k = at(i, text.len());
            text.truncate(k);
        }
        Mutation::Control(i, b) => {
            let k = at(i, text.len());
            text.insert(k, *b);
        }
        Mutation::Huge(i) => {
            let k = at(i, text.len());
            text.splice(k..k, b"99999999999999999999999999".iter().copied());
        }
        Mutation::LongRun(i, n) => {
            let k = at(i, text.len());
            text.splice(k..k, std::iter::repeat_n(b'(', *n));
        }
        Mutation::Splice(a, b) => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    text.iter()
                        .enumerate()
                        .filter(|(_, c)| **c == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .filter(|&i| i < text.len())
                .collect();
            if starts.len() >= 2 {
                // Cut line A in its middle and join line B's second half to it.
                let la = starts[a.index(starts.len())];
                let lb = starts[b.index(starts.len())];
                let end_b = text[lb..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(text.len(), |p| lb + p);
                let half_b = text[lb + (end_b - lb) / 2..end_b].to_vec();
                let end_a = text[la..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(text.len(), |p| la + p);
                let mid_a = la + (end_a - la) / 2;
                text.splice(mid_a..end_a, half_b);
            }
        }
    }
}

/// Lines the reader should count: every `\n`, plus a last line without one.
fn physical_lines(text: &[u8]) -> u64 {
    let newlines = text.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!text.is_empty() && text.last() != Some(&b'\n'))
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The test input: chosen seed lines, then the mutations.
fn build(seeds: &[String], picks: &[Index], muts: &[Mutation]) -> Vec<u8> {
    let mut text = Vec::new();
    for p in picks {
        text.extend_from_slice(seeds[p.index(seeds.len())].as_bytes());
        text.push(b'\n');
    }
    for m in muts {
        apply(&mut text, m);
    }
    text
}

const SOURCE: &str = "fuzz/input.txt";
/// A low line cap, so overlong runs hit it.
const MAX_LINE: usize = 4096;

fn check(format: Format, text: &[u8]) -> Result<(), TestCaseError> {
    let lines = physical_lines(text);
    // Strict: errors name the source and a line of the input; reading always ends.
    let mut strict = EventReader::new(text, SOURCE, format, false).with_max_line(MAX_LINE);
    let mut errors = 0u64;
    for item in strict.by_ref() {
        if let Err(e) = item {
            errors += 1;
            prop_assert!(
                matches!(e, IngestError::Malformed { .. }),
                "{format}: only malformed lines from memory: {e}"
            );
            prop_assert_eq!(e.path(), SOURCE);
            prop_assert!(
                (1..=lines).contains(&e.line()),
                "{}: line {} of {}",
                format,
                e.line(),
                lines
            );
            let msg = e.to_string();
            let prefix = format!("{SOURCE}:{}: ", e.line());
            prop_assert!(msg.starts_with(&prefix), "{}", msg);
            prop_assert!(!has_control(&msg), "{format}: {msg:?}");
        }
    }
    prop_assert_eq!(strict.lines_read(), lines);
    // Lenient: no error at all, every line read, one skip per strict error.
    let mut lenient = EventReader::new(text, SOURCE, format, true).with_max_line(MAX_LINE);
    for item in lenient.by_ref() {
        prop_assert!(item.is_ok(), "{format}: lenient error {:?}", item.err());
    }
    prop_assert_eq!(lenient.lines_read(), lines);
    let skipped = lenient.skipped();
    prop_assert_eq!(skipped.total(), errors);
    for ex in skipped.examples() {
        prop_assert!(!has_control(&ex.message), "{format}: {:?}", ex.message);
    }
    prop_assert!(!has_control(&skipped.to_string()));
    Ok(())
}

fn owned(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

fn picks() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 1..10)
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn strace_mutations(p in picks(), m in mutations()) {
        check(Format::Strace, &build(strace_seeds(), &p, &m))?;
    }

    #[test]
    fn falco_mutations(p in picks(), m in mutations()) {
        check(Format::Falco, &build(&owned(FALCO), &p, &m))?;
    }

    #[test]
    fn tracee_mutations(p in picks(), m in mutations()) {
        check(Format::Tracee, &build(&owned(TRACEE), &p, &m))?;
    }

    #[test]
    fn lidds_mutations(p in picks(), m in mutations()) {
        check(Format::LidDs, &build(&owned(LIDDS), &p, &m))?;
    }

    #[test]
    fn adfa_mutations(p in picks(), m in mutations()) {
        check(Format::Adfa, &build(&owned(ADFA), &p, &m))?;
    }

    #[test]
    fn jsonl_mutations(p in picks(), m in mutations()) {
        check(Format::Jsonl, &build(&owned(JSONL), &p, &m))?;
    }

    #[test]
    fn labels_mutations(p in picks(), m in mutations(), hosts in any::<bool>()) {
        let bytes = build(&owned(LABELS), &p, &m);
        let text = String::from_utf8_lossy(&bytes);
        let lines = text.lines().count();
        let expect = if hosts { Expect::Hosts } else { Expect::AnyShape };
        if let Err(e) = parse_labels(&text, "fuzz.labels", expect) {
            let msg = e.to_string();
            prop_assert!(!has_control(&msg), "{msg:?}");
            let line: usize = msg
                .strip_prefix("fuzz.labels:")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            prop_assert!((1..=lines).contains(&line), "{msg}");
        }
    }
}

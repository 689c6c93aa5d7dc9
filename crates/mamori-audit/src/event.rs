//! The event model: one [`AuditEvent`] per audit serial, holding its [`Record`]s and the decoded
//! views provenance analysis reads ([`Syscall`], [`Execve`], [`PathItem`]s, CWD, [`SockAddr`],
//! the process title).

use serde::Serialize;

/// One audit event: every record that shares a `msg=audit(SECONDS.MILLIS:SERIAL)` stamp.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEvent {
    /// The event's serial number (unique per boot, increasing).
    pub serial: u64,
    /// The event's time, nanoseconds since the Unix epoch (audit stamps have millisecond resolution).
    pub time_ns: i64,
    /// The SYSCALL record, decoded, when the event has one.
    pub syscall: Option<Syscall>,
    /// The EXECVE record's arguments, decoded (hex and split arguments joined).
    pub execve: Option<Execve>,
    /// The PATH records in `item` order.
    pub paths: Vec<PathItem>,
    /// The CWD record's directory.
    pub cwd: Option<String>,
    /// The SOCKADDR record, decoded.
    pub sockaddr: Option<SockAddr>,
    /// The PROCTITLE record, decoded (NUL separators become spaces).
    pub proctitle: Option<String>,
    /// Every record of the event, including the decoded ones, in arrival order.
    pub records: Vec<Record>,
}

/// One audit record: its type and its `key=value` fields, as written.
///
/// A record owns its line once; fields are spans into it, so parsing allocates per record, not
/// per field. Values are unquoted (`name="/etc/passwd"` → `/etc/passwd`) but otherwise raw: hex
/// stays hex (see [`Record::decoded`]). Fields nested in a userspace `msg='op=… res=success'`
/// follow the `msg` field itself (whose value is the text between the single quotes).
#[derive(Clone, Default)]
pub struct Record {
    /// The record type (`SYSCALL`, `PATH`, `USER_LOGIN`, …; `UNKNOWN[1337]` kept as written).
    pub kind: String,
    line: Box<str>,
    spans: Box<[Span]>,
    /// `spans[..n_raw]` are the raw fields, the rest the ENRICHED interpretations.
    n_raw: u32,
}

/// Where one field's key and value are in a record's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) key: u32,
    pub(crate) val: u32,
    pub(crate) val_len: u32,
    pub(crate) key_len: u16,
    pub(crate) flags: u16,
}

impl Span {
    /// The value was written in double or single quotes: a literal, never hex.
    pub(crate) const QUOTED: u16 = 1;
    /// The field was nested in a userspace `msg='…'`.
    pub(crate) const NESTED: u16 = 2;
}

/// A field's value together with how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    /// The value, unquoted.
    pub text: &'a str,
    /// Whether it was quoted; audit quotes literal strings and hex-encodes the untrusted strings
    /// it cannot quote (spaces, quotes, control bytes), so an unquoted string field may be hex.
    pub quoted: bool,
    /// Whether it came from inside a userspace `msg='…'`.
    pub nested: bool,
}

impl<'a> Value<'a> {
    /// The value as audit's untrusted-string encoding means it: quoted → as written, `(null)` and
    /// `(none)` → `None`, unquoted hex → decoded (invalid UTF-8 replaced), anything else as written.
    pub fn decoded(&self) -> Option<std::borrow::Cow<'a, str>> {
        crate::hex::decode_untrusted(self.text, self.quoted)
    }
}

impl Record {
    /// Builds a record from pairs (for tests and synthetic input). Values are taken as literal
    /// (quoted) strings; [`Record::raw`] gives a `k="v"` rendering of them.
    pub fn new<K, V>(
        kind: impl Into<String>,
        fields: impl IntoIterator<Item = (K, V)>,
        interpreted: impl IntoIterator<Item = (K, V)>,
    ) -> Record
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let kind = kind.into();
        let mut line = format!("type={kind}");
        let mut spans = Vec::new();
        for (k, v) in fields {
            push_literal(&mut line, &mut spans, k.as_ref(), v.as_ref(), ' ');
        }
        let n_raw = spans_len(&spans);
        for (i, (k, v)) in interpreted.into_iter().enumerate() {
            let sep = if i == 0 { '\x1d' } else { ' ' };
            push_literal(&mut line, &mut spans, k.as_ref(), v.as_ref(), sep);
        }
        Record::from_parts(kind, line.into_boxed_str(), spans.into_boxed_slice(), n_raw)
    }

    pub(crate) fn from_parts(
        kind: String,
        line: Box<str>,
        spans: Box<[Span]>,
        n_raw: u32,
    ) -> Record {
        Record {
            kind,
            line,
            spans,
            n_raw,
        }
    }

    /// The line the record came from (without its newline), raw, interpretations included.
    pub fn raw(&self) -> &str {
        &self.line
    }

    fn text(&self, start: u32, len: u32) -> &str {
        // Spans are made by the parser on char boundaries of `line`; `get` keeps a bad span
        // harmless rather than panicking.
        self.line
            .get(start as usize..start as usize + len as usize)
            .unwrap_or("")
    }

    fn pair(&self, s: &Span) -> (&str, &str) {
        (
            self.text(s.key, u32::from(s.key_len)),
            self.text(s.val, s.val_len),
        )
    }

    fn value_of(&self, s: &Span) -> Value<'_> {
        Value {
            text: self.text(s.val, s.val_len),
            quoted: s.flags & Span::QUOTED != 0,
            nested: s.flags & Span::NESTED != 0,
        }
    }

    fn raw_spans(&self) -> &[Span] {
        &self.spans[..(self.n_raw as usize).min(self.spans.len())]
    }

    fn interpreted_spans(&self) -> &[Span] {
        &self.spans[(self.n_raw as usize).min(self.spans.len())..]
    }

    /// The raw value of a field, first occurrence.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.value(key).map(|v| v.text)
    }

    /// The raw value of a field with how it was written, first occurrence.
    pub fn value(&self, key: &str) -> Option<Value<'_>> {
        self.raw_spans()
            .iter()
            .find(|s| self.text(s.key, u32::from(s.key_len)) == key)
            .map(|s| self.value_of(s))
    }

    /// A field decoded as audit's untrusted strings are (see [`Value::decoded`]): hex-encoded
    /// `name`, `exe`, `comm`, `cwd`, `proctitle`, EXECVE `aN`, `key`, USER_CMD `cmd`, … as text.
    pub fn decoded(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.value(key).and_then(|v| v.decoded())
    }

    /// The ENRICHED interpretation of a field (`UID`, `SYSCALL`, …), first occurrence.
    pub fn interpreted_get(&self, key: &str) -> Option<&str> {
        self.interpreted_spans()
            .iter()
            .find(|s| self.text(s.key, u32::from(s.key_len)) == key)
            .map(|s| self.text(s.val, s.val_len))
    }

    /// Raw fields in order, values unquoted, nested `msg='…'` fields after `msg`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.raw_spans().iter().map(|s| self.pair(s))
    }

    /// Raw fields with how each value was written.
    pub fn values(&self) -> impl ExactSizeIterator<Item = (&str, Value<'_>)> + '_ {
        self.raw_spans()
            .iter()
            .map(|s| (self.text(s.key, u32::from(s.key_len)), self.value_of(s)))
    }

    /// The ENRICHED interpretations after the 0x1d separator (`UID="root"` …), in order.
    pub fn interpreted(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.interpreted_spans().iter().map(|s| self.pair(s))
    }
}

/// Appends `SEP k="v"` to a synthetic line and the span of the pair.
fn push_literal(line: &mut String, spans: &mut Vec<Span>, k: &str, v: &str, sep: char) {
    line.push(sep);
    let key = line.len();
    line.push_str(k);
    line.push_str("=\"");
    let val = line.len();
    line.push_str(v);
    line.push('"');
    spans.push(Span {
        key: key as u32,
        key_len: k.len().min(u16::MAX as usize) as u16,
        val: val as u32,
        val_len: v.len() as u32,
        flags: Span::QUOTED,
    });
}

fn spans_len(spans: &[Span]) -> u32 {
    u32::try_from(spans.len()).unwrap_or(u32::MAX)
}

impl PartialEq for Record {
    /// Records are equal when their kind and fields are; the raw text may differ (spacing, a
    /// `node=` prefix kept as a field, synthetic records from [`Record::new`]).
    fn eq(&self, other: &Record) -> bool {
        self.kind == other.kind
            && self.fields().eq(other.fields())
            && self.interpreted().eq(other.interpreted())
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Pairs<I>(std::cell::Cell<Option<I>>);
        impl<'a, I: Iterator<Item = (&'a str, &'a str)>> std::fmt::Debug for Pairs<I> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut l = f.debug_list();
                if let Some(it) = self.0.take() {
                    l.entries(it);
                }
                l.finish()
            }
        }
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("fields", &Pairs(std::cell::Cell::new(Some(self.fields()))))
            .field(
                "interpreted",
                &Pairs(std::cell::Cell::new(Some(self.interpreted()))),
            )
            .finish()
    }
}

impl Serialize for Record {
    /// The same shape as before spans: `{"kind", "fields": [[k, v]…], "interpreted": [[k, v]…]}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Seq<'a>(&'a Record, bool);
        impl Serialize for Seq<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if self.1 {
                    s.collect_seq(self.0.interpreted())
                } else {
                    s.collect_seq(self.0.fields())
                }
            }
        }
        let mut st = serializer.serialize_struct("Record", 3)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("fields", &Seq(self, false))?;
        st.serialize_field("interpreted", &Seq(self, true))?;
        st.end()
    }
}

/// The SYSCALL record's fields provenance needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Syscall {
    /// Architecture (`c000003e` for x86_64).
    pub arch: String,
    /// System-call number (`-1` when missing).
    pub number: i64,
    /// Its name when known for the architecture (from ENRICHED `SYSCALL=` or the built-in table).
    pub name: Option<String>,
    /// Whether the call succeeded (`success=yes`).
    pub success: bool,
    /// The return value (`exit=`), negative errno on failure.
    pub exit: i64,
    /// Arguments a0..a3, as written in hex.
    pub args: [u64; 4],
    /// Process id (`u32::MAX` when missing or unreadable, as for all ids here).
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Audit (login) user id; `u32::MAX` when unset (`4294967295` or `-1`).
    pub auid: u32,
    /// Session id; `u32::MAX` when unset.
    pub ses: u32,
    /// The command name (`comm=`), at most 16 bytes, hex decoded.
    pub comm: String,
    /// The executable (`exe=`), hex decoded.
    pub exe: String,
    /// The rule key (`key=`), when the matching rule had one (`(null)` → `None`; several keys
    /// are joined by 0x01, as the kernel writes them).
    pub key: Option<String>,
}

/// The EXECVE record: the program's arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Execve {
    /// The arguments, decoded (`a0`, `a1`, … with `aN[i]` pieces joined, hex decoded).
    pub argv: Vec<String>,
    /// `argc` as the kernel reported it (may exceed `argv.len()` when records were lost).
    pub argc: usize,
}

/// One PATH record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PathItem {
    /// The item number (`item=`).
    pub item: u32,
    /// The name as passed to the call, decoded (relative names are relative to the CWD).
    pub name: Option<String>,
    /// Inode number.
    pub inode: Option<u64>,
    /// Device, `MAJOR:MINOR` as written (hex).
    pub dev: Option<String>,
    /// File mode (octal, as a number).
    pub mode: Option<u32>,
    /// `NORMAL`, `PARENT`, `CREATE`, `DELETE`, `UNKNOWN`.
    pub nametype: String,
}

/// A decoded SOCKADDR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum SockAddr {
    /// IPv4 address and port.
    Inet {
        /// Dotted address.
        addr: String,
        /// Port.
        port: u16,
    },
    /// IPv6 address and port.
    Inet6 {
        /// Address, compressed form.
        addr: String,
        /// Port.
        port: u16,
    },
    /// Unix-domain socket path (abstract names start with `@`).
    Unix {
        /// The path.
        path: String,
    },
    /// Netlink socket.
    Netlink {
        /// Port id.
        pid: u32,
    },
    /// Any other family, with the raw hex kept.
    Other {
        /// Family number.
        number: u16,
        /// The record's `saddr=` hex.
        raw: String,
    },
}

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockAddr::Inet { addr, port } => write!(f, "{addr}:{port}"),
            SockAddr::Inet6 { addr, port } => write!(f, "[{addr}]:{port}"),
            SockAddr::Unix { path } => write!(f, "unix:{path}"),
            SockAddr::Netlink { pid } => write!(f, "netlink:{pid}"),
            SockAddr::Other { number, raw } => write!(f, "family{number}:{raw}"),
        }
    }
}

impl AuditEvent {
    /// The first record of a type.
    pub fn record(&self, kind: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.kind == kind)
    }

    /// Whether the event's end marker (`EOE`) was seen.
    pub fn has_eoe(&self) -> bool {
        self.records.iter().any(|r| r.kind == "EOE")
    }
}

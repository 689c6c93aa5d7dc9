//! HTTP/1.1 on the wire: reading a request (head, then a `Content-Length` body) from a buffered
//! reader and writing a response. Just enough of RFC 9112 for a device simulator, with every size
//! bounded so bad input can neither exhaust memory nor panic.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Write};

/// Longest request line or header line; legitimate ones here are well under 1 KiB.
pub const MAX_LINE: usize = 8 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 100;
/// Largest request body: bodies are fault names and mode values, a few bytes each.
pub const MAX_BODY: usize = 64 * 1024;
/// Responses up to this size go out in one write with their head (one segment on loopback).
const COALESCE_BODY: usize = 16 * 1024;

/// A parsed request. Header names are lower-cased; the path has no query or fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// HTTP/1.0 rather than HTTP/1.1 (changes the keep-alive default).
    pub http10: bool,
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
    pub body: Vec<u8>,
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The peer closed, reset or timed out, possibly mid-request: there is no one to answer.
    Closed,
    /// The request can't be served: answer with this status and reason, then close.
    Reject(u16, &'static str),
}

impl From<io::Error> for HttpError {
    fn from(_: io::Error) -> HttpError {
        HttpError::Closed
    }
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the response (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        let mut keep = !self.http10;
        let tokens = self
            .headers
            .iter()
            .filter(|(n, _)| n == "connection")
            .flat_map(|(_, v)| v.split(','));
        for token in tokens {
            let token = token.trim();
            if token.eq_ignore_ascii_case("close") {
                return false;
            }
            if token.eq_ignore_ascii_case("keep-alive") {
                keep = true;
            }
        }
        keep
    }

    /// Whether the client waits for `100 Continue` before sending its body (curl does for
    /// larger uploads).
    pub fn expects_continue(&self) -> bool {
        !self.http10
            && self.content_length > 0
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// Reads a request line and headers. `Ok(None)`: the peer closed cleanly between requests.
/// The body is left unread: call [`read_body`] (after a `100 Continue` if expected).
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Option<Request>, HttpError> {
    let mut line = Vec::with_capacity(128);
    // RFC 9112 §2.2: a server should ignore empty lines before the request line.
    let mut blank = 0;
    loop {
        match read_line(r, &mut line, 414, "request line too long")? {
            None => return Ok(None),
            Some(()) if line.is_empty() && blank < 4 => blank += 1,
            Some(()) => break,
        }
    }
    let (method, path, http10) = parse_request_line(&line)?;

    let mut headers = Vec::new();
    let mut content_length = None;
    loop {
        if read_line(r, &mut line, 431, "header line too long")?.is_none() {
            return Err(HttpError::Closed);
        }
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::Reject(431, "too many headers"));
        }
        let (name, value) = parse_header(&line)?;
        match name.as_str() {
            "content-length" => {
                let length = parse_content_length(&value)?;
                if content_length.is_some_and(|known| known != length) {
                    return Err(HttpError::Reject(400, "conflicting Content-Length headers"));
                }
                content_length = Some(length);
            }
            "transfer-encoding" => {
                return Err(HttpError::Reject(
                    501,
                    "Transfer-Encoding is not supported: send a Content-Length",
                ))
            }
            _ => {}
        }
        headers.push((name, value));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(HttpError::Reject(413, "request body too large"));
    }
    Ok(Some(Request {
        method,
        path,
        http10,
        headers,
        content_length,
        body: Vec::new(),
    }))
}

/// Reads the request's `Content-Length` body.
pub fn read_body<R: Read>(r: &mut R, request: &mut Request) -> Result<(), HttpError> {
    request.body = vec![0; request.content_length];
    r.read_exact(&mut request.body)?;
    Ok(())
}

/// Reads one line into `line`, without its CRLF (or bare LF). `Ok(None)`: EOF before any byte.
fn read_line<R: BufRead>(
    r: &mut R,
    line: &mut Vec<u8>,
    too_long: u16,
    reason: &'static str,
) -> Result<Option<()>, HttpError> {
    line.clear();
    // The +1 tells a line of exactly MAX_LINE bytes from a longer one.
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if n > MAX_LINE {
            HttpError::Reject(too_long, reason)
        } else {
            HttpError::Closed
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(()))
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, bool), HttpError> {
    const BAD: HttpError = HttpError::Reject(400, "malformed request line");
    let text = std::str::from_utf8(line).map_err(|_| BAD)?;
    let mut parts = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(BAD);
    }
    // Origin form only: this is not a proxy.
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HttpError::Reject(400, "request target must be a path"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => {
            return Err(HttpError::Reject(505, "only HTTP/1.0 and HTTP/1.1"))
        }
        _ => return Err(BAD),
    };
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok((method.to_string(), path.to_string(), http10))
}

fn parse_header(line: &[u8]) -> Result<(String, String), HttpError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HttpError::Reject(400, "obsolete header line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::Reject(400, "header line without a colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // No whitespace before the colon (RFC 9112 §5.1): it has been used to smuggle requests.
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(HttpError::Reject(400, "malformed header name"));
    }
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let value = String::from_utf8_lossy(value)
        .trim_matches([' ', '\t'])
        .to_string();
    Ok((name, value))
}

fn parse_content_length(value: &str) -> Result<usize, HttpError> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Reject(400, "malformed Content-Length"));
    }
    value
        .parse()
        .map_err(|_| HttpError::Reject(400, "malformed Content-Length"))
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A response to write with [`write_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    /// Borrowed for the static `huge` body, so it isn't copied per request.
    pub body: Cow<'static, [u8]>,
    /// Close the connection after this response whatever the client asked.
    pub close: bool,
}

impl Response {
    /// A response with a JSON body already serialized.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::with_body(status, "application/json", body)
    }

    /// A JSON `{"error": reason}` response.
    pub fn error(status: u16, reason: &str) -> Response {
        let body = serde_json::json!({ "error": reason }).to_string();
        Response::json(status, body.into_bytes())
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::with_body(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// A response without a body (e.g. 204).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Cow::Borrowed(b""),
            close: false,
        }
    }

    /// A response with this content type and body.
    pub fn with_body(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Response {
        Response {
            content_type: Some(content_type),
            body: body.into(),
            ..Response::empty(status)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Marks the connection to be closed after this response.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }
}

/// Writes `response`; `keep_alive` says whether the connection stays open after it.
pub fn write_response<W: Write>(
    w: &mut W,
    response: &Response,
    keep_alive: bool,
) -> io::Result<()> {
    let body: &[u8] = &response.body;
    let mut out = Vec::with_capacity(
        256 + if body.len() <= COALESCE_BODY {
            body.len()
        } else {
            0
        },
    );
    write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: mamori-wot-device\r\n",
        response.status,
        reason(response.status)
    )?;
    if let Some(content_type) = response.content_type {
        write!(out, "Content-Type: {content_type}\r\n")?;
    }
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    // RFC 9110 §8.6: no Content-Length on 1xx and 204.
    if response.status >= 200 && response.status != 204 {
        write!(out, "Content-Length: {}\r\n", body.len())?;
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(out, "Connection: {connection}\r\n\r\n")?;
    if body.len() <= COALESCE_BODY {
        out.extend_from_slice(body);
        w.write_all(&out)?;
    } else {
        w.write_all(&out)?;
        w.write_all(body)?;
    }
    w.flush()
}

/// The interim response a client sending `Expect: 100-continue` waits for.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one whole request (head and body) from `bytes`.
    fn parse(bytes: &[u8]) -> Result<Option<Request>, HttpError> {
        let mut r = bytes;
        read_one(&mut r)
    }

    fn read_one(r: &mut &[u8]) -> Result<Option<Request>, HttpError> {
        let Some(mut request) = read_head(r)? else {
            return Ok(None);
        };
        read_body(r, &mut request)?;
        Ok(Some(request))
    }

    #[test]
    fn a_simple_get() {
        let req =
            parse(b"GET /things/0?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept:  */* \r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/things/0");
        assert!(!req.http10);
        assert_eq!(req.header("host"), Some("127.0.0.1:8080"));
        assert_eq!(req.header("accept"), Some("*/*"));
        assert_eq!(req.content_length, 0);
        assert!(req.keep_alive());
    }

    #[test]
    fn pipelined_requests_with_bodies_keep_their_framing() {
        let mut wire: &[u8] = b"PUT /m HTTP/1.1\r\nContent-Length: 6\r\n\r\n\"auto\"\
                                POST /control/fault HTTP/1.1\r\ncontent-length: 4\r\n\r\nhang\
                                GET / HTTP/1.1\r\n\r\n";
        let a = read_one(&mut wire).unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.body.as_slice()),
            ("PUT", &b"\"auto\""[..])
        );
        let b = read_one(&mut wire).unwrap().unwrap();
        assert_eq!(
            (b.path.as_str(), b.body.as_slice()),
            ("/control/fault", &b"hang"[..])
        );
        let c = read_one(&mut wire).unwrap().unwrap();
        assert_eq!(c.path, "/");
        assert_eq!(read_one(&mut wire), Ok(None));
    }

    #[test]
    fn bare_lf_and_leading_blank_lines_are_tolerated() {
        let req = parse(b"\r\n\nGET / HTTP/1.1\nHost: h\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.header("host"), Some("h"));
    }

    #[test]
    fn eof_between_requests_is_clean_but_not_within_one() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\n"),
            Err(HttpError::Closed)
        );
        assert_eq!(parse(b"GET / HTT"), Err(HttpError::Closed));
        assert_eq!(
            parse(b"PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            Err(HttpError::Closed)
        );
    }

    #[test]
    fn connection_semantics() {
        let close = parse(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(!close.unwrap().unwrap().keep_alive());
        let old = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(old.http10 && !old.keep_alive());
        let old_keep = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(old_keep.unwrap().unwrap().keep_alive());
    }

    #[test]
    fn expect_continue_only_with_a_body() {
        let head = b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert!(read_head(&mut &head[..])
            .unwrap()
            .unwrap()
            .expects_continue());
        let no_body = b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
        assert!(!read_head(&mut &no_body[..])
            .unwrap()
            .unwrap()
            .expects_continue());
    }

    #[test]
    fn malformed_requests_are_rejected_with_a_status() {
        let cases: &[(&[u8], u16)] = &[
            (b"garbage\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1 x\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\n\r\n", 400),
            (b"GET things HTTP/1.1\r\n\r\n", 400),
            (b"GET http://h/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / FTP/1.1\r\n\r\n", 400),
            (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n: v\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                400,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                400,
            ),
            (b"GET / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", 413),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                501,
            ),
        ];
        for (wire, status) in cases {
            match parse(wire) {
                Err(HttpError::Reject(s, _)) => {
                    assert_eq!(s, *status, "{}", String::from_utf8_lossy(wire))
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(wire)),
            }
        }
    }

    #[test]
    fn repeated_equal_content_lengths_are_fine() {
        let req = parse(b"PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(req.unwrap().unwrap().body, b"ab");
    }

    #[test]
    fn sizes_are_bounded() {
        let mut long_target = b"GET /".to_vec();
        long_target.extend_from_slice(&[b'a'; MAX_LINE]);
        long_target.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(matches!(
            parse(&long_target),
            Err(HttpError::Reject(414, _))
        ));

        let mut long_header = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long_header.extend_from_slice(&[b'a'; MAX_LINE]);
        long_header.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            parse(&long_header),
            Err(HttpError::Reject(431, _))
        ));

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Err(HttpError::Reject(431, _))));
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let mut out = Vec::new();
        let resp = Response::json(200, b"21.5".to_vec());
        write_response(&mut out, &resp, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("\r\nContent-Type: application/json\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nContent-Length: 4\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: keep-alive\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n21.5"), "{text}");

        let mut out = Vec::new();
        let resp = Response::empty(204).header("X-A", "b");
        write_response(&mut out, &resp, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(
            text.contains("\r\nX-A: b\r\nConnection: close\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn large_bodies_are_written_whole() {
        let body = vec![b'x'; COALESCE_BODY * 3];
        let mut out = Vec::new();
        let resp = Response::with_body(200, "text/plain", body.clone());
        write_response(&mut out, &resp, true).unwrap();
        assert!(out.ends_with(&body));
        let head = String::from_utf8_lossy(&out[..out.len() - body.len()]).into_owned();
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
    }
}

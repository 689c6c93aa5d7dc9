//! The device itself: which endpoint a request is for, and its answer under the fault in force.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::args::Config;
use crate::auth::Security;
use crate::fault::{self, Fault, FaultSwitch};
use crate::http::{Request, Response};
use crate::sensors::{self, Clock, Mode, ThingState};
use crate::td;

/// The longest a long-poll (observe, event) is held before answering anyway.
const LONGPOLL_LIMIT: Duration = Duration::from_secs(30);

/// What the connection should do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this response.
    Reply(Response),
    /// Send nothing, ever (the `hang` fault).
    Hang,
}

/// The endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `/`: the TD URLs.
    Directory,
    /// `/.well-known/wot`.
    WellKnown,
    /// `/things/{i}`.
    Td(usize),
    /// `/things/{i}/properties/{p}`.
    Property(usize, Property),
    /// `/things/{i}/properties/temperature/observe`.
    Observe(usize),
    /// `/things/{i}/actions/reset`.
    Reset(usize),
    /// `/things/{i}/events/overheat`.
    Overheat(usize),
    /// `/control/fault`.
    Control,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Property {
    Temperature,
    Counter,
    Status,
    Mode,
}

impl Route {
    /// Parses a request path; `None` for a path this device doesn't serve.
    fn parse(path: &str, things: usize) -> Option<Route> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments.as_slice() {
            [""] => Route::Directory,
            [".well-known", "wot"] => Route::WellKnown,
            ["control", "fault"] => Route::Control,
            ["things", index, rest @ ..] => {
                let i = thing_index(index, things)?;
                match rest {
                    [] => Route::Td(i),
                    ["properties", "temperature", "observe"] => Route::Observe(i),
                    ["properties", name] => Route::Property(
                        i,
                        match *name {
                            "temperature" => Property::Temperature,
                            "counter" => Property::Counter,
                            "status" => Property::Status,
                            "mode" => Property::Mode,
                            _ => return None,
                        },
                    ),
                    ["actions", "reset"] => Route::Reset(i),
                    ["events", "overheat"] => Route::Overheat(i),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    fn methods(self) -> &'static [&'static str] {
        match self {
            Route::Property(_, Property::Mode) => &["GET", "PUT"],
            Route::Reset(_) => &["POST"],
            Route::Control => &["GET", "POST"],
            _ => &["GET"],
        }
    }

    /// TDs and /control are open whatever the security mode: a consumer must be able to read
    /// how to authenticate, and tests must be able to switch faults.
    fn needs_credentials(self) -> bool {
        !matches!(
            self,
            Route::Directory | Route::WellKnown | Route::Td(_) | Route::Control
        )
    }
}

/// Thing indexes are canonical decimals (`/things/01` is not thing 1) below the thing count.
fn thing_index(segment: &str, things: usize) -> Option<usize> {
    let canonical = segment == "0" || !segment.starts_with('0');
    if !canonical || segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok().filter(|&i| i < things)
}

/// The simulated device: its things, security, fault switch and clock.
#[derive(Debug)]
pub struct Device {
    title: String,
    things: Vec<ThingState>,
    security: Security,
    fault: FaultSwitch,
    clock: Clock,
    /// `HOST:PORT` for hrefs when a request has no usable `Host` header.
    fallback_host: String,
}

impl Device {
    /// A device as configured, listening at `fallback_host`.
    pub fn new(config: &Config, fallback_host: String) -> Device {
        Device {
            title: config.title.clone(),
            things: (0..config.things).map(|_| ThingState::default()).collect(),
            security: config.security.clone(),
            fault: FaultSwitch::new(config.fault),
            clock: Clock::new(),
            fallback_host,
        }
    }

    /// Answers one request (blocking for long-polls and the `slow` fault).
    pub fn handle(&self, request: &Request) -> Outcome {
        let route = Route::parse(&request.path, self.things.len());
        if route == Some(Route::Control) {
            return Outcome::Reply(self.control(request));
        }
        let fault = self.fault.get();
        if fault == Fault::Hang {
            return Outcome::Hang;
        }
        let Some(route) = route else {
            return Outcome::Reply(Response::error(404, "not found"));
        };
        let methods = route.methods();
        if !methods.contains(&request.method.as_str()) {
            let response = Response::error(405, "method not allowed");
            return Outcome::Reply(response.header("Allow", methods.join(", ")));
        }
        if route.needs_credentials() && !self.security.authorizes(request.header("authorization")) {
            let response = Response::error(401, "unauthorized");
            let response = response.header("WWW-Authenticate", self.security.challenge());
            return Outcome::Reply(response);
        }
        match route {
            Route::Directory => Outcome::Reply(json_response(&self.directory(request))),
            Route::WellKnown if self.things.len() == 1 => Outcome::Reply(self.td(request, 0)),
            Route::WellKnown => Outcome::Reply(json_response(&self.directory(request))),
            Route::Td(i) => Outcome::Reply(self.td(request, i)),
            Route::Property(i, Property::Mode) if request.method == "PUT" => {
                Outcome::Reply(self.write_mode(i, &request.body))
            }
            Route::Property(i, property) => self.read(i, property, fault),
            Route::Observe(i) => {
                self.clock.wait_for(self.clock.tick() + 1, LONGPOLL_LIMIT);
                // The fault may have changed while the client waited.
                self.read(i, Property::Temperature, self.fault.get())
            }
            Route::Reset(i) => {
                self.things[i].reset(self.clock.tick());
                Outcome::Reply(Response::json(200, br#"{"ok":true}"#.to_vec()))
            }
            Route::Overheat(i) => {
                let tick = self
                    .clock
                    .wait_for(sensors::next_event(self.clock.tick()), LONGPOLL_LIMIT);
                if self.fault.get() == Fault::Hang {
                    return Outcome::Hang;
                }
                Outcome::Reply(json_response(&json!(sensors::overheat(i, tick))))
            }
            Route::Control => Outcome::Reply(self.control(request)),
        }
    }

    fn name(&self, i: usize) -> String {
        if self.things.len() == 1 {
            self.title.clone()
        } else {
            format!("{}-{i}", self.title)
        }
    }

    /// `http://HOST` as the client addressed us, so hrefs work through port mappings.
    fn base(&self, request: &Request) -> String {
        let host = request
            .header("host")
            .filter(|h| is_host(h))
            .unwrap_or(&self.fallback_host);
        format!("http://{host}")
    }

    fn directory(&self, request: &Request) -> Value {
        let base = self.base(request);
        let urls = (0..self.things.len()).map(|i| Value::String(format!("{base}/things/{i}")));
        Value::Array(urls.collect())
    }

    fn td(&self, request: &Request, i: usize) -> Response {
        let base = self.base(request);
        json_response(&td::thing_description(
            &self.name(i),
            i,
            &base,
            &self.security,
        ))
    }

    /// A property read (or an observation's answer) under `fault`.
    fn read(&self, i: usize, property: Property, fault: Fault) -> Outcome {
        match fault {
            Fault::Hang => return Outcome::Hang,
            Fault::Slow(ms) => thread::sleep(Duration::from_millis(ms)),
            Fault::Flap(ms) if even_second() => thread::sleep(Duration::from_millis(ms)),
            Fault::Http500 => {
                return Outcome::Reply(Response::text(500, "internal error (fault http-500)\n"))
            }
            _ => {}
        }
        let tick = self.clock.tick();
        let thing = &self.things[i];
        let response = match (property, fault) {
            (Property::Temperature, Fault::WrongType) => Response::json(200, b"\"hot\"".to_vec()),
            (Property::Temperature, Fault::OutOfRange) => Response::json(200, b"500.0".to_vec()),
            (Property::Temperature, Fault::Huge) => {
                Response::with_body(200, "application/json", Cow::Borrowed(huge_body()))
            }
            (Property::Temperature, Fault::NotJson) => {
                Response::with_body(200, "text/html", &b"<html>oops</html>"[..])
            }
            (Property::Temperature, _) => json_response(&json!(sensors::temperature(i, tick))),
            (Property::Counter, _) => json_response(&json!(thing.counter(tick))),
            (Property::Status, Fault::MissingMember) => json_response(&json!({"state": "running"})),
            (Property::Status, _) => json_response(&json!({"state": "running", "uptime": tick})),
            (Property::Mode, _) => json_response(&json!(thing.mode().as_str())),
        };
        Outcome::Reply(response)
    }

    fn write_mode(&self, i: usize, body: &[u8]) -> Response {
        match json_string(body).as_deref().and_then(Mode::parse) {
            Some(mode) => {
                self.things[i].set_mode(mode);
                Response::empty(204)
            }
            None => Response::error(400, "mode must be the JSON string \"auto\" or \"manual\""),
        }
    }

    /// `/control/fault`: read or switch the fault. Never faulty itself.
    fn control(&self, request: &Request) -> Response {
        match request.method.as_str() {
            "GET" => Response::text(200, self.fault.get().to_string()),
            "POST" => match requested_fault(&request.body) {
                Ok(new) => {
                    let old = self.fault.set(new);
                    eprintln!("mamori-wot-device: fault set to {new} (was {old})");
                    if new == Fault::Crash {
                        // Late enough for this response to reach the client.
                        fault::crash_after(Duration::from_millis(100));
                        return Response::text(200, new.to_string()).closing();
                    }
                    Response::text(200, new.to_string())
                }
                Err(reason) => Response::text(400, format!("{reason}\n")),
            },
            _ => Response::error(405, "method not allowed").header("Allow", "GET, POST"),
        }
    }
}

fn json_response(value: &Value) -> Response {
    Response::json(200, value.to_string().into_bytes())
}

/// The `huge` fault's body, built once: a JSON string of exactly `HUGE_BYTES`.
fn huge_body() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| {
        let mut body = vec![b'x'; fault::HUGE_BYTES];
        body[0] = b'"';
        body[fault::HUGE_BYTES - 1] = b'"';
        body
    })
}

/// Whether a `Host` header value can go into an href as it is (no injection into the TD).
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]%".contains(&b))
}

/// A body that must be one JSON string. The first byte is checked before serde_json sees it,
/// so no nested input makes it recurse on the small connection-thread stack.
fn json_string(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if !text.starts_with('"') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The fault a /control POST asks for: a bare name, a JSON string, or `{"fault": NAME}`.
fn requested_fault(body: &[u8]) -> Result<Fault, String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| "body is not UTF-8".to_string())?
        .trim();
    let name = if text.starts_with('{') {
        // String values only, so nested input fails at its first byte instead of recursing.
        let object: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| format!("bad JSON body ({e}): want {{\"fault\":\"NAME\"}}"))?;
        object
            .get("fault")
            .cloned()
            .ok_or_else(|| "JSON body without a \"fault\" member".to_string())?
    } else if text.starts_with('"') {
        json_string(body).ok_or_else(|| "bad JSON string body".to_string())?
    } else {
        text.to_string()
    };
    Fault::parse(&name)
}

/// Whether the wall clock is in an even second (for `flap`).
fn even_second() -> bool {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| d.as_secs() % 2 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn device(things: usize, security: Security, fault: Fault) -> Device {
        let config = Config {
            listen: "127.0.0.1:0".into(),
            title: "dev".into(),
            things,
            security,
            fault,
        };
        Device::new(&config, "127.0.0.1:8080".into())
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            http10: false,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            content_length: body.len(),
            body: body.to_vec(),
        }
    }

    fn get(device: &Device, path: &str) -> Response {
        reply(
            device,
            &request("GET", path, &[("host", "dev.local:9000")], b""),
        )
    }

    fn reply(device: &Device, request: &Request) -> Response {
        match device.handle(request) {
            Outcome::Reply(response) => response,
            Outcome::Hang => panic!("{} {} hung", request.method, request.path),
        }
    }

    fn json_of(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/", 2), Some(Route::Directory));
        assert_eq!(Route::parse("/things/1", 2), Some(Route::Td(1)));
        assert_eq!(Route::parse("/things/2", 2), None);
        assert_eq!(Route::parse("/things/01", 2), None);
        assert_eq!(Route::parse("/things/-1", 2), None);
        assert_eq!(Route::parse("/things/", 2), None);
        assert_eq!(Route::parse("/things/0/", 2), None);
        assert_eq!(Route::parse("/things/99999999999999999999999", 2), None);
        assert_eq!(
            Route::parse("/things/0/properties/mode", 2),
            Some(Route::Property(0, Property::Mode))
        );
        assert_eq!(
            Route::parse("/things/1/properties/temperature/observe", 2),
            Some(Route::Observe(1))
        );
        assert_eq!(Route::parse("/things/0/properties/humidity", 2), None);
        assert_eq!(Route::parse("/control/fault", 2), Some(Route::Control));
        assert_eq!(Route::parse("things/0", 2), None);
    }

    #[test]
    fn directory_and_well_known() {
        let many = device(3, Security::NoSec, Fault::None);
        let dir = json_of(&get(&many, "/"));
        assert_eq!(
            dir,
            json!([
                "http://dev.local:9000/things/0",
                "http://dev.local:9000/things/1",
                "http://dev.local:9000/things/2"
            ])
        );
        assert_eq!(json_of(&get(&many, "/.well-known/wot")), dir);
        assert_eq!(json_of(&get(&many, "/things/2"))["title"], "dev-2");

        let one = device(1, Security::NoSec, Fault::None);
        let td = json_of(&get(&one, "/.well-known/wot"));
        assert_eq!(td["title"], "dev");
        assert_eq!(td["id"], "urn:mamori:device:dev");
    }

    #[test]
    fn hrefs_use_the_host_header_or_the_listen_address() {
        let dev = device(1, Security::NoSec, Fault::None);
        let td = json_of(&get(&dev, "/things/0"));
        let href = &td["properties"]["counter"]["forms"][0]["href"];
        assert_eq!(href, "http://dev.local:9000/things/0/properties/counter");

        let no_host = reply(&dev, &request("GET", "/things/0", &[], b""));
        let href = json_of(&no_host)["properties"]["counter"]["forms"][0]["href"].clone();
        assert_eq!(href, "http://127.0.0.1:8080/things/0/properties/counter");

        let evil = request("GET", "/", &[("host", "x\"/><script>")], b"");
        assert_eq!(
            json_of(&reply(&dev, &evil))[0],
            "http://127.0.0.1:8080/things/0"
        );
    }

    #[test]
    fn healthy_property_values_match_their_schemas() {
        let dev = device(1, Security::NoSec, Fault::None);
        let temperature = get(&dev, "/things/0/properties/temperature");
        assert_eq!(temperature.status, 200);
        assert_eq!(temperature.content_type, Some("application/json"));
        let t = json_of(&temperature).as_f64().unwrap();
        assert!((-40.0..=125.0).contains(&t), "{t}");
        assert!(json_of(&get(&dev, "/things/0/properties/counter")).is_u64());
        let status = json_of(&get(&dev, "/things/0/properties/status"));
        assert_eq!(status["state"], "running");
        assert!(status["uptime"].is_u64());
        assert_eq!(json_of(&get(&dev, "/things/0/properties/mode")), "auto");
    }

    #[test]
    fn value_faults() {
        let temperature = |fault| {
            let dev = device(1, Security::NoSec, fault);
            get(&dev, "/things/0/properties/temperature")
        };
        assert_eq!(json_of(&temperature(Fault::WrongType)), "hot");
        assert_eq!(json_of(&temperature(Fault::OutOfRange)), 500.0);
        let huge = temperature(Fault::Huge);
        assert_eq!(huge.body.len(), fault::HUGE_BYTES);
        assert!(json_of(&huge).is_string());
        let html = temperature(Fault::NotJson);
        assert_eq!(
            (html.content_type, &html.body[..]),
            (Some("text/html"), &b"<html>oops</html>"[..])
        );

        let dev = device(1, Security::NoSec, Fault::MissingMember);
        assert_eq!(
            json_of(&get(&dev, "/things/0/properties/status")),
            json!({"state": "running"})
        );
        // Other properties are unaffected by a value fault.
        assert!(json_of(&get(&dev, "/things/0/properties/temperature")).is_f64());
    }

    #[test]
    fn http_500_and_slow_hit_every_property_read() {
        let dev = device(1, Security::NoSec, Fault::Http500);
        for p in ["temperature", "counter", "status", "mode"] {
            assert_eq!(get(&dev, &format!("/things/0/properties/{p}")).status, 500);
        }
        assert_eq!(get(&dev, "/things/0").status, 200);

        let dev = device(1, Security::NoSec, Fault::Slow(60));
        let started = Instant::now();
        assert_eq!(get(&dev, "/things/0/properties/counter").status, 200);
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn hang_spares_only_control() {
        let dev = device(1, Security::NoSec, Fault::Hang);
        for path in [
            "/",
            "/things/0",
            "/things/0/properties/temperature",
            "/nowhere",
        ] {
            let outcome = dev.handle(&request("GET", path, &[], b""));
            assert!(matches!(outcome, Outcome::Hang), "{path}");
        }
        assert_eq!(get(&dev, "/control/fault").body.as_ref(), b"hang");
    }

    #[test]
    fn credentials_guard_everything_but_tds_and_control() {
        let dev = device(
            2,
            Security::Bearer {
                token: "t0k".into(),
            },
            Fault::None,
        );
        let denied = get(&dev, "/things/1/properties/counter");
        assert_eq!(denied.status, 401);
        let challenge = denied
            .headers
            .iter()
            .find(|(n, _)| *n == "WWW-Authenticate");
        assert_eq!(challenge.unwrap().1, "Bearer realm=\"mamori-wot-device\"");
        for path in ["/", "/.well-known/wot", "/things/1", "/control/fault"] {
            assert_eq!(get(&dev, path).status, 200, "{path}");
        }
        let authorized = [("authorization", "Bearer t0k")];
        let ok = request("GET", "/things/1/properties/counter", &authorized, b"");
        assert_eq!(reply(&dev, &ok).status, 200);
        let reset = request("POST", "/things/1/actions/reset", &[], b"");
        assert_eq!(reply(&dev, &reset).status, 401);
    }

    #[test]
    fn unknown_paths_and_wrong_methods() {
        let dev = device(1, Security::NoSec, Fault::None);
        assert_eq!(get(&dev, "/things/1").status, 404);
        assert_eq!(get(&dev, "/favicon.ico").status, 404);
        let put = reply(
            &dev,
            &request("PUT", "/things/0/properties/counter", &[], b"1"),
        );
        assert_eq!(put.status, 405);
        assert_eq!(put.headers, vec![("Allow", "GET".to_string())]);
        let get_reset = get(&dev, "/things/0/actions/reset");
        assert_eq!(get_reset.status, 405);
        let delete = reply(&dev, &request("DELETE", "/control/fault", &[], b""));
        assert_eq!(delete.status, 405);
    }

    #[test]
    fn mode_is_writable_within_its_enum() {
        let dev = device(1, Security::NoSec, Fault::None);
        let put = |body: &[u8]| {
            reply(
                &dev,
                &request("PUT", "/things/0/properties/mode", &[], body),
            )
            .status
        };
        assert_eq!(put(b"\"manual\""), 204);
        assert_eq!(json_of(&get(&dev, "/things/0/properties/mode")), "manual");
        for bad in [
            &b"\"turbo\""[..],
            b"manual",
            b"1",
            b"",
            b"[\"auto\"]",
            b"\"auto",
            b"\xff",
        ] {
            assert_eq!(put(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(json_of(&get(&dev, "/things/0/properties/mode")), "manual");
    }

    #[test]
    fn reset_zeroes_the_counter() {
        let dev = device(1, Security::NoSec, Fault::None);
        let reset = reply(&dev, &request("POST", "/things/0/actions/reset", &[], b""));
        assert_eq!((reset.status, json_of(&reset)), (200, json!({"ok": true})));
        assert_eq!(json_of(&get(&dev, "/things/0/properties/counter")), 0);
    }

    #[test]
    fn control_switches_faults() {
        let dev = device(1, Security::NoSec, Fault::None);
        let post = |body: &[u8]| reply(&dev, &request("POST", "/control/fault", &[], body));
        assert_eq!(get(&dev, "/control/fault").body.as_ref(), b"none");
        assert_eq!(post(b"wrong-type\n").body.as_ref(), b"wrong-type");
        assert_eq!(post(br#"{"fault":"slow:450"}"#).body.as_ref(), b"slow:450");
        assert_eq!(post(br#""http-500""#).body.as_ref(), b"http-500");
        assert_eq!(get(&dev, "/control/fault").body.as_ref(), b"http-500");
        for bad in [
            &b"explode"[..],
            b"",
            br#"{"mode":"x"}"#,
            br#"{"fault":1}"#,
            b"slow:x",
        ] {
            assert_eq!(post(bad).status, 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(get(&dev, "/control/fault").body.as_ref(), b"http-500");
    }

    #[test]
    fn deep_json_bodies_fit_a_connection_stack() {
        // Nesting that would recurse 128 levels deep in serde_json must fail before recursing.
        let deep: Vec<u8> = [&b"{\"fault\":"[..], &[b'['; 5000], &[b']'; 5000], b"}"].concat();
        let deep_mode: Vec<u8> = [&[b'['; 5000][..], &[b']'; 5000]].concat();
        let dev = device(1, Security::NoSec, Fault::None);
        let statuses = thread::Builder::new()
            .stack_size(crate::server::STACK_SIZE)
            .spawn(move || {
                let a = reply(&dev, &request("POST", "/control/fault", &[], &deep)).status;
                let mode = request("PUT", "/things/0/properties/mode", &[], &deep_mode);
                (a, reply(&dev, &mode).status)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(statuses, (400, 400));
    }
}

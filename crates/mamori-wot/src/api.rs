//! The HTTP requests a Thing Description declares: every form of its properties, actions and
//! events (and its top-level forms), with the method a client sends and whether the operation
//! only reads. The system-call context signals use it to tell a device's documented reads from
//! requests that change it (`mamori train --thing-description`).

use serde_json::{Map, Value};

use crate::td::ThingDescription;

/// One declared HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpForm {
    /// The method: the form's `htv:methodName`, else the TD 1.1 HTTP binding's default for
    /// its operation (GET to read, PUT to write a property, POST to invoke an action).
    pub method: String,
    /// The href as a path from the server's root, URI-template expressions kept
    /// (`/0/config/get{?query}`); resolved against the TD's `base` by path only.
    pub href: String,
    /// Whether the operation only reads (readproperty, observeproperty, queryaction,
    /// subscribeevent, readallproperties, …).
    pub reads: bool,
    /// What it is: `property status`, `property threshold (write)`, `action pause`.
    pub what: String,
}

/// Method and whether it only reads, per TD 1.1 operation type; `None`: not an HTTP request
/// operation mamori knows.
fn operation(op: &str) -> Option<(&'static str, bool)> {
    Some(match op {
        "readproperty"
        | "observeproperty"
        | "unobserveproperty"
        | "readallproperties"
        | "readmultipleproperties"
        | "observeallproperties"
        | "unobserveallproperties"
        | "queryaction"
        | "queryallactions"
        | "subscribeevent"
        | "unsubscribeevent"
        | "subscribeallevents"
        | "unsubscribeallevents" => ("GET", true),
        "writeproperty" | "writeallproperties" | "writemultipleproperties" => ("PUT", false),
        "invokeaction" => ("POST", false),
        "cancelaction" => ("DELETE", false),
        _ => return None,
    })
}

impl ThingDescription {
    /// Every HTTP(S) request form the TD declares, in document order by affordance name.
    /// Forms of other protocols (CoAP, MQTT) are left out.
    pub fn http_forms(&self) -> Vec<HttpForm> {
        let mut out = Vec::new();
        for (kind, defaults) in [
            ("properties", None),
            ("actions", Some(&["invokeaction"][..])),
            ("events", Some(&["subscribeevent", "unsubscribeevent"][..])),
        ] {
            let Some(affordances) = self.raw.get(kind).and_then(Value::as_object) else {
                continue;
            };
            let mut names: Vec<&String> = affordances.keys().collect();
            names.sort();
            for name in names {
                let a = &affordances[name];
                let default_ops: Vec<&str> = match defaults {
                    Some(d) => d.to_vec(),
                    None if flag(a, "readOnly") => vec!["readproperty"],
                    None if flag(a, "writeOnly") => vec!["writeproperty"],
                    None => vec!["readproperty", "writeproperty"],
                };
                let label = match kind {
                    "properties" => "property",
                    "actions" => "action",
                    _ => "event",
                };
                for form in forms(a) {
                    self.push_form(&mut out, form, &default_ops, |op, reads| {
                        if kind == "properties" && !reads && op == "writeproperty" {
                            format!("{label} {name} (write)")
                        } else {
                            format!("{label} {name}")
                        }
                    });
                }
            }
        }
        for form in forms(&self.raw) {
            self.push_form(&mut out, form, &[], |op, _| format!("the Thing's {op}"));
        }
        out
    }

    fn push_form(
        &self,
        out: &mut Vec<HttpForm>,
        form: &Map<String, Value>,
        default_ops: &[&str],
        what: impl Fn(&str, bool) -> String,
    ) {
        let Some(href) = form.get("href").and_then(Value::as_str) else {
            return;
        };
        let Some(path) = self.http_path(href) else {
            return;
        };
        let ops: Vec<&str> = match form.get("op") {
            Some(Value::String(op)) => vec![op.as_str()],
            Some(Value::Array(ops)) => ops.iter().filter_map(Value::as_str).collect(),
            _ => default_ops.to_vec(),
        };
        let method = form
            .get("htv:methodName")
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty());
        for op in ops {
            let Some((default_method, reads)) = operation(op) else {
                continue;
            };
            out.push(HttpForm {
                method: method.unwrap_or(default_method).to_ascii_uppercase(),
                href: path.clone(),
                reads,
                what: what(op, reads),
            });
        }
    }

    /// The path (and query, templates kept) of an http(s) href, resolved against the base's
    /// path by hand: URL joining would percent-encode the template's braces.
    fn http_path(&self, href: &str) -> Option<String> {
        if let Some((scheme, rest)) = href.split_once("://") {
            if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
                return None;
            }
            return Some(
                rest.find('/')
                    .map_or("/".to_string(), |i| rest[i..].to_string()),
            );
        }
        let base = self.base_url();
        if base.is_some_and(|b| b.scheme() != "http" && b.scheme() != "https") {
            return None;
        }
        if href.starts_with('/') {
            return Some(href.to_string());
        }
        let base_path = base.map_or("/", |b| b.path());
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        Some(format!("{dir}{href}"))
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn forms(v: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    v.get("forms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(json: Value) -> ThingDescription {
        ThingDescription::parse("test.td.json", json.to_string().as_bytes()).expect("valid TD")
    }

    #[test]
    fn forms_give_methods_paths_and_whether_they_only_read() {
        let t = td(serde_json::json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "title": "cam",
            "base": "http://cam.local:8080/api/",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                "status": {"type": "string", "readOnly": true,
                           "forms": [{"href": "status"}]},
                "threshold": {"type": "integer",
                              "forms": [{"href": "/config/threshold"}]},
                "option": {"type": "string", "readOnly": true,
                           "uriVariables": {"query": {"type": "string"}},
                           "forms": [{"href": "config/get{?query}", "htv:methodName": "GET"}]},
                "feed": {"type": "string", "readOnly": true,
                         "forms": [{"href": "coap://cam.local/feed"}]}
            },
            "actions": {
                "pause": {"forms": [{"href": "http://cam.local:8080/0/detection/pause",
                                     "htv:methodName": "GET"}]},
                "snapshot": {"forms": [{"href": "snapshot"}]}
            },
            "events": {
                "motion": {"data": {"type": "string"},
                           "forms": [{"href": "events/motion", "subprotocol": "longpoll",
                                      "op": "subscribeevent"}]}
            },
            "forms": [{"href": "all", "op": ["readallproperties", "writeallproperties"]}]
        }));
        let got: Vec<(String, String, bool, String)> = t
            .http_forms()
            .into_iter()
            .map(|f| (f.method, f.href, f.reads, f.what))
            .collect();
        let want = [
            ("GET", "/api/config/get{?query}", true, "property option"),
            ("GET", "/api/status", true, "property status"),
            ("GET", "/config/threshold", true, "property threshold"),
            (
                "PUT",
                "/config/threshold",
                false,
                "property threshold (write)",
            ),
            ("GET", "/0/detection/pause", false, "action pause"),
            ("POST", "/api/snapshot", false, "action snapshot"),
            ("GET", "/api/events/motion", true, "event motion"),
            ("GET", "/api/all", true, "the Thing's readallproperties"),
            ("PUT", "/api/all", false, "the Thing's writeallproperties"),
        ];
        let want: Vec<(String, String, bool, String)> = want
            .iter()
            .map(|(m, h, r, w)| (m.to_string(), h.to_string(), *r, w.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}

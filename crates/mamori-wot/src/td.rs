//! Loading Thing Descriptions: from a file, a TD's URL, a servient's directory (a JSON array of
//! TD URLs, as node-wot serves at `/`), a TD directory listing (an array of TDs) or
//! `/.well-known/wot`. Each TD is checked ([`crate::check`]) and then read into `wot-td`'s
//! model; the probe targets are derived from it.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use url::Url;
use wot_td::thing::{
    DataSchema, DefaultedFormOperations, FormOperation, KnownSecuritySchemeSubtype,
    SecuritySchemeSubtype,
};

use crate::check::{check, join, Problem};
use crate::client::{escaped_start, Auth, Credentials, FetchError, HttpClient};

/// `wot-td`'s Thing without extensions.
pub type Thing = wot_td::Thing;
/// A DataSchema of that Thing.
pub type Schema = DataSchema<wot_td::hlist::Nil, wot_td::hlist::Nil, wot_td::hlist::Nil>;

/// Why a TD could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TdError {
    /// The file or URL could not be read.
    #[error("{origin}: cannot read: {message}")]
    Unreadable {
        /// The file or URL.
        origin: String,
        /// What happened.
        message: String,
    },
    /// Not JSON at all.
    #[error("{origin}: not JSON at line {line}, column {column}: {message} (starts {start})")]
    NotJson {
        /// The file or URL.
        origin: String,
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
        /// The first bytes, escaped.
        start: String,
    },
    /// JSON, but not a usable TD; every problem with its JSON path.
    #[error("{origin}: invalid Thing Description: {}", list(.problems))]
    Invalid {
        /// The file or URL.
        origin: String,
        /// What is wrong, where.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl TdError {
    /// The file or URL the error is about.
    pub fn origin(&self) -> &str {
        match self {
            TdError::Unreadable { origin, .. }
            | TdError::NotJson { origin, .. }
            | TdError::Invalid { origin, .. } => origin,
        }
    }
}

/// A checked TD and where it came from.
#[derive(Debug)]
pub struct ThingDescription {
    /// The file or URL it was loaded from.
    pub origin: String,
    /// The typed model.
    pub thing: Thing,
    /// The document as loaded.
    pub raw: Value,
    /// What relative hrefs resolve against: the TD's `base`, else its URL.
    base: Option<Url>,
}

/// A readable property to poll.
#[derive(Debug, Clone)]
pub struct PropertyTarget {
    /// The property's name.
    pub name: String,
    /// The resolved `readproperty` href.
    pub url: String,
    /// Its DataSchema, as JSON (the property affordance itself).
    pub schema: Value,
    /// Where that schema is in the TD (`/properties/temperature`).
    pub schema_path: String,
    /// What the form's security asks for.
    pub auth: Auth,
    /// The form declares a text content type (`text/plain`, `text/html`): the reply's body is
    /// the value, a string, instead of JSON.
    pub text: bool,
}

/// An observable property or an event offered over HTTP long-poll or SSE.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// `property` or `event`.
    pub kind: &'static str,
    /// The affordance's name.
    pub name: String,
    /// The resolved href.
    pub url: String,
    /// `longpoll` or `sse`.
    pub subprotocol: String,
    /// The schema of what arrives, as JSON (an event's `data`; none: anything).
    pub schema: Option<Value>,
    /// Where that schema is in the TD (`/events/overheat/data`).
    pub schema_path: String,
    /// What the form's security asks for.
    pub auth: Auth,
}

/// An affordance the monitor cannot probe, and why (only CoAP forms, writeOnly, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The affordance.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl ThingDescription {
    /// Checks and reads a TD from its JSON text; `origin` names it in errors and, when it is a
    /// URL, resolves relative hrefs.
    pub fn parse(origin: &str, bytes: &[u8]) -> Result<Self, TdError> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| TdError::NotJson {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
            start: escaped_start(bytes, 40),
        })?;
        Self::from_value(origin, raw)
    }

    /// [`Self::parse`] of an already decoded document.
    pub fn from_value(origin: &str, raw: Value) -> Result<Self, TdError> {
        let invalid = |problems| TdError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        let problems = check(&raw);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let thing: Thing = serde_path_to_error::deserialize(&raw).map_err(|e| {
            let path = e.path().to_string();
            invalid(vec![Problem {
                path: pointer(&path),
                message: e.into_inner().to_string(),
            }])
        })?;
        let origin_url = Url::parse(origin).ok();
        let base = match thing.base.as_deref() {
            Some(b) => Some(
                match &origin_url {
                    Some(o) => o.join(b),
                    None => Url::parse(b),
                }
                .map_err(|e| {
                    invalid(vec![Problem {
                        path: "/base".into(),
                        message: format!("`{b}` is not a URL: {e}"),
                    }])
                })?,
            ),
            None => origin_url,
        };
        let td = ThingDescription {
            origin: origin.to_string(),
            thing,
            raw,
            base,
        };
        let problems = td.consistency();
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(td)
    }

    /// What relative hrefs resolve against: the TD's `base`, else its URL.
    pub(crate) fn base_url(&self) -> Option<&Url> {
        self.base.as_ref()
    }

    /// The Thing's title.
    pub fn title(&self) -> &str {
        &self.thing.title
    }

    /// Resolves an href against the base.
    fn resolve(&self, href: &str) -> Result<Url, String> {
        match &self.base {
            Some(base) => base.join(href),
            None => Url::parse(href),
        }
        .map_err(|e| format!("href `{href}` does not resolve ({e}); the TD has no base"))
    }

    /// Problems only the typed model shows: unresolvable hrefs, readOnly properties with write
    /// forms and writeOnly ones with read forms.
    fn consistency(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, p) in sorted(self.thing.properties.as_ref()) {
            let at = join("/properties", name);
            for (i, form) in p.interaction.forms.iter().enumerate() {
                let fp = join(&join(&at, "forms"), &i.to_string());
                if let Err(message) = self.resolve(&form.href) {
                    problems.push(Problem {
                        path: join(&fp, "href"),
                        message,
                    });
                }
                let ops = property_ops(&form.op, &p.data_schema);
                if p.data_schema.read_only && ops.contains(&FormOperation::WriteProperty) {
                    problems.push(Problem {
                        path: join(&fp, "op"),
                        message: "writeproperty on a readOnly property".into(),
                    });
                }
                if p.data_schema.write_only && ops.contains(&FormOperation::ReadProperty) {
                    problems.push(Problem {
                        path: join(&fp, "op"),
                        message: "readproperty on a writeOnly property".into(),
                    });
                }
            }
        }
        problems
    }

    /// What a form's security names require of the client (the Thing's own when the form has
    /// none). `auto` and `combo` send what is configured; an unsupported scheme is an error.
    pub fn auth_for(&self, form_security: Option<&Vec<String>>) -> Result<Auth, String> {
        let names = form_security.unwrap_or(&self.thing.security);
        let mut auth = Auth::None;
        for name in names {
            let Some(def) = self.thing.security_definitions.get(name) else {
                return Err(format!("security `{name}` is not defined"));
            };
            auth = match &def.subtype {
                SecuritySchemeSubtype::Known(KnownSecuritySchemeSubtype::NoSec) => auth,
                SecuritySchemeSubtype::Known(KnownSecuritySchemeSubtype::Basic(_)) => Auth::Basic,
                SecuritySchemeSubtype::Known(KnownSecuritySchemeSubtype::Bearer(_)) => Auth::Bearer,
                SecuritySchemeSubtype::Known(KnownSecuritySchemeSubtype::Auto) => auth,
                other => {
                    return Err(format!(
                        "security scheme {} of `{name}` is not supported (nosec, basic, bearer)",
                        scheme_name(other)
                    ))
                }
            };
        }
        Ok(auth)
    }

    /// The readable properties to poll, by name, and the ones that cannot be polled, with why.
    pub fn readable_properties(&self) -> (Vec<PropertyTarget>, Vec<Skipped>) {
        let mut targets = Vec::new();
        let mut skipped = Vec::new();
        for (name, p) in sorted(self.thing.properties.as_ref()) {
            if p.data_schema.write_only {
                skipped.push(Skipped {
                    name: name.clone(),
                    reason: "writeOnly".into(),
                });
                continue;
            }
            let form = p.interaction.forms.iter().find(|f| {
                property_ops(&f.op, &p.data_schema).contains(&FormOperation::ReadProperty)
                    && is_http(&f.href, self.base.as_ref())
                    && f.subprotocol.is_none()
            });
            let Some(form) = form else {
                skipped.push(Skipped {
                    name: name.clone(),
                    reason: "no readproperty form over http(s)".into(),
                });
                continue;
            };
            if form.href.contains('{') {
                skipped.push(Skipped {
                    name: name.clone(),
                    reason: format!(
                        "its href `{}` needs uriVariables values to be read",
                        form.href
                    ),
                });
                continue;
            }
            let text = form
                .content_type
                .as_deref()
                .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/"));
            let resolved = self
                .resolve(&form.href)
                .and_then(|url| Ok((url, self.auth_for(form.security.as_ref())?)));
            match resolved {
                Ok((url, auth)) => targets.push(PropertyTarget {
                    name: name.clone(),
                    url: url.to_string(),
                    schema: self.raw["properties"][name.as_str()].clone(),
                    schema_path: join("/properties", name),
                    auth,
                    text,
                }),
                Err(reason) => skipped.push(Skipped {
                    name: name.clone(),
                    reason,
                }),
            }
        }
        (targets, skipped)
    }

    /// Observable properties and events offered over HTTP long-poll or SSE.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let mut subs = Vec::new();
        for (name, p) in sorted(self.thing.properties.as_ref()) {
            for f in &p.interaction.forms {
                if property_ops(&f.op, &p.data_schema).contains(&FormOperation::ObserveProperty) {
                    let schema = Some(&self.raw["properties"][name.as_str()]);
                    if let Some(s) = self.subscription("property", name, f, schema) {
                        subs.push(s);
                        break;
                    }
                }
            }
        }
        for (name, e) in sorted(self.thing.events.as_ref()) {
            for f in &e.interaction.forms {
                let ops = explicit_ops(&f.op);
                if ops.is_empty() || ops.contains(&FormOperation::SubscribeEvent) {
                    let schema = self.raw["events"][name.as_str()].get("data");
                    if let Some(s) = self.subscription("event", name, f, schema) {
                        subs.push(s);
                        break;
                    }
                }
            }
        }
        subs
    }

    fn subscription(
        &self,
        kind: &'static str,
        name: &str,
        form: &wot_td::thing::Form<wot_td::hlist::Nil>,
        schema: Option<&Value>,
    ) -> Option<Subscription> {
        let sub = form.subprotocol.as_deref()?;
        if !(sub == "longpoll" || sub == "sse") || !is_http(&form.href, self.base.as_ref()) {
            return None;
        }
        let url = self.resolve(&form.href).ok()?;
        let auth = self.auth_for(form.security.as_ref()).ok()?;
        let schema_path = match kind {
            "event" => join(&join("/events", name), "data"),
            _ => join("/properties", name),
        };
        Some(Subscription {
            kind,
            schema_path,
            name: name.to_string(),
            url: url.to_string(),
            subprotocol: sub.to_string(),
            schema: schema.cloned(),
            auth,
        })
    }

    /// The `invokeaction` href of an action, its security, and its input schema.
    pub fn action(&self, name: &str) -> Result<(String, Auth), String> {
        let actions = self.thing.actions.as_ref();
        let a = actions
            .and_then(|a| a.get(name))
            .ok_or_else(|| format!("the TD has no action `{name}`"))?;
        let form = a
            .interaction
            .forms
            .iter()
            .find(|f| {
                let ops = explicit_ops(&f.op);
                (ops.is_empty() || ops.contains(&FormOperation::InvokeAction))
                    && is_http(&f.href, self.base.as_ref())
            })
            .ok_or_else(|| format!("action `{name}` has no invokeaction form over http(s)"))?;
        let url = self.resolve(&form.href)?;
        Ok((url.to_string(), self.auth_for(form.security.as_ref())?))
    }
}

/// Affordances by name, so probes and reports come in a stable order.
fn sorted<'a, V: 'a, M>(map: Option<&'a M>) -> Vec<(&'a String, &'a V)>
where
    &'a M: IntoIterator<Item = (&'a String, &'a V)>,
{
    let mut v: Vec<_> = map.into_iter().flatten().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

fn explicit_ops(ops: &DefaultedFormOperations) -> Vec<FormOperation> {
    match ops {
        DefaultedFormOperations::Custom(v) => v.clone(),
        DefaultedFormOperations::Default => Vec::new(),
    }
}

/// A property form's operations, with TD 1.1's defaults when `op` is absent.
fn property_ops(ops: &DefaultedFormOperations, schema: &Schema) -> Vec<FormOperation> {
    match ops {
        DefaultedFormOperations::Custom(v) => v.clone(),
        DefaultedFormOperations::Default if schema.read_only => vec![FormOperation::ReadProperty],
        DefaultedFormOperations::Default if schema.write_only => {
            vec![FormOperation::WriteProperty]
        }
        DefaultedFormOperations::Default => {
            vec![FormOperation::ReadProperty, FormOperation::WriteProperty]
        }
    }
}

fn is_http(href: &str, base: Option<&Url>) -> bool {
    let url = match base {
        Some(b) => b.join(href),
        None => Url::parse(href),
    };
    url.is_ok_and(|u| u.scheme() == "http" || u.scheme() == "https")
}

fn scheme_name(s: &SecuritySchemeSubtype) -> String {
    match s {
        SecuritySchemeSubtype::Known(k) => serde_json::to_value(k)
            .ok()
            .and_then(|v| v.get("scheme").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "?".into()),
        SecuritySchemeSubtype::Unknown(u) => u.scheme.clone(),
    }
}

/// `properties.temp.forms[0].op` (serde_path_to_error) as a JSON pointer.
fn pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let (name, index) = match part.find('[') {
            Some(i) => (&part[..i], Some(part[i + 1..].trim_end_matches(']'))),
            None => (part, None),
        };
        if !name.is_empty() {
            out = join(&out, name);
        }
        if let Some(i) = index {
            out = join(&out, i);
        }
    }
    out
}

/// Where TDs come from: a file, or a URL of a TD, a directory or `/.well-known/wot`.
pub async fn load(
    source: &str,
    client: &HttpClient,
    credentials: &Credentials,
    timeout: Duration,
) -> Vec<Result<ThingDescription, TdError>> {
    load_new(source, client, credentials, timeout, &HashSet::new()).await
}

/// [`load`], leaving out the TDs whose URLs are in `known` (not even fetched): a directory is
/// re-read for new Things without fetching every TD it lists again.
pub async fn load_new(
    source: &str,
    client: &HttpClient,
    credentials: &Credentials,
    timeout: Duration,
    known: &HashSet<String>,
) -> Vec<Result<ThingDescription, TdError>> {
    if known.contains(source) {
        return Vec::new();
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        return load_url(source, client, credentials, timeout, known).await;
    }
    let path = Path::new(source.strip_prefix("file://").unwrap_or(source));
    match std::fs::read(path) {
        Ok(bytes) => vec![ThingDescription::parse(&path.display().to_string(), &bytes)],
        Err(e) => vec![Err(TdError::Unreadable {
            origin: path.display().to_string(),
            message: e.to_string(),
        })],
    }
}

async fn load_url(
    url: &str,
    client: &HttpClient,
    credentials: &Credentials,
    timeout: Duration,
    known: &HashSet<String>,
) -> Vec<Result<ThingDescription, TdError>> {
    let unreadable = |origin: &str, e: FetchError| TdError::Unreadable {
        origin: origin.to_string(),
        message: e.to_string(),
    };
    // TDs are public in node-wot and in TD directories; send credentials when configured, as
    // some devices protect their TD too.
    let auth = if !credentials.bearer_token.is_empty() {
        Auth::Bearer
    } else if !credentials.basic_user.is_empty() {
        Auth::Basic
    } else {
        Auth::None
    };
    let document = match client.get_json(url, auth, credentials, timeout).await {
        Ok(reply) => reply.value,
        Err(FetchError::NotJson { message, start, .. }) => {
            return vec![Err(TdError::NotJson {
                origin: url.to_string(),
                line: 1,
                column: 1,
                message,
                start,
            })]
        }
        Err(e) => return vec![Err(unreadable(url, e))],
    };
    match document {
        // A directory: TD URLs (node-wot's `/`) or the TDs themselves (a TD directory's listing).
        Value::Array(entries) => {
            let base = Url::parse(url).ok();
            let mut out = Vec::new();
            for (i, entry) in entries.into_iter().enumerate() {
                match entry {
                    Value::String(href) => {
                        let target = base
                            .as_ref()
                            .and_then(|b| b.join(&href).ok())
                            .map_or(href.clone(), |u| u.to_string());
                        if known.contains(&target) {
                            continue;
                        }
                        match client.get_json(&target, auth, credentials, timeout).await {
                            Ok(reply) => {
                                out.push(ThingDescription::from_value(&target, reply.value))
                            }
                            Err(FetchError::NotJson { message, start, .. }) => {
                                out.push(Err(TdError::NotJson {
                                    origin: target,
                                    line: 1,
                                    column: 1,
                                    message,
                                    start,
                                }))
                            }
                            Err(e) => out.push(Err(unreadable(&target, e))),
                        }
                    }
                    td @ Value::Object(_) => {
                        out.push(ThingDescription::from_value(&format!("{url}#{i}"), td))
                    }
                    other => out.push(Err(TdError::Invalid {
                        origin: url.to_string(),
                        problems: vec![Problem {
                            path: format!("/{i}"),
                            message: format!(
                                "a directory lists TD URLs or TDs, got {}",
                                crate::check::kind(&other)
                            ),
                        }],
                    })),
                }
            }
            out
        }
        td => vec![ThingDescription::from_value(url, td)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td() -> Value {
        json!({
            "@context": "https://www.w3.org/2019/wot/td/v1",
            "title": "counter",
            "base": "http://127.0.0.1:8080/counter/",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}, "b": {"scheme": "bearer"}},
            "security": ["nosec_sc"],
            "properties": {
                "count": {"type": "integer", "readOnly": true, "observable": true, "forms": [
                    {"href": "properties/count", "op": ["readproperty"]},
                    {"href": "properties/count/observable", "op": ["observeproperty"], "subprotocol": "longpoll"},
                    {"href": "coap://127.0.0.1/counter/properties/count"}
                ]},
                "secret": {"type": "string", "writeOnly": true, "forms": [{"href": "properties/secret"}]},
                "coaponly": {"type": "string", "forms": [{"href": "coap://127.0.0.1/x"}]},
                "locked": {"type": "string", "forms": [{"href": "properties/locked", "security": "b"}]},
                "status": {"type": "string", "readOnly": true,
                           "forms": [{"href": "status", "contentType": "text/html"}]},
                "option": {"type": "string", "readOnly": true,
                           "uriVariables": {"q": {"type": "string"}},
                           "forms": [{"href": "config{?q}"}]}
            },
            "actions": {"increment": {"forms": [{"href": "actions/increment", "op": "invokeaction"}]}},
            "events": {"change": {"data": {"type": "integer"}, "forms": [
                {"href": "events/change", "subprotocol": "longpoll", "op": ["subscribeevent"]}
            ]}}
        })
    }

    #[test]
    fn targets_resolve_against_base_with_defaults_and_security() {
        let td = ThingDescription::from_value("file.json", td()).expect("valid");
        let (targets, skipped) = td.readable_properties();
        let names: Vec<_> = targets
            .iter()
            .map(|t| (t.name.as_str(), t.url.as_str(), t.auth, t.text))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "count",
                    "http://127.0.0.1:8080/counter/properties/count",
                    Auth::None,
                    false
                ),
                (
                    "locked",
                    "http://127.0.0.1:8080/counter/properties/locked",
                    Auth::Bearer,
                    false
                ),
                // a text reply is the value itself, a string
                (
                    "status",
                    "http://127.0.0.1:8080/counter/status",
                    Auth::None,
                    true
                ),
            ]
        );
        let why: Vec<_> = skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            why,
            vec![
                ("coaponly", "no readproperty form over http(s)"),
                (
                    "option",
                    "its href `config{?q}` needs uriVariables values to be read"
                ),
                ("secret", "writeOnly")
            ]
        );
        let subs: Vec<_> = td
            .subscriptions()
            .into_iter()
            .map(|s| (s.kind, s.name, s.url))
            .collect();
        assert_eq!(
            subs,
            vec![
                (
                    "property",
                    "count".to_string(),
                    "http://127.0.0.1:8080/counter/properties/count/observable".to_string()
                ),
                (
                    "event",
                    "change".to_string(),
                    "http://127.0.0.1:8080/counter/events/change".to_string()
                ),
            ]
        );
        assert_eq!(
            td.action("increment").expect("found").0,
            "http://127.0.0.1:8080/counter/actions/increment"
        );
        assert!(td.action("explode").is_err());
    }

    #[test]
    fn errors_name_the_json_path() {
        let err = ThingDescription::parse("t.json", b"{\"title\": ").expect_err("not json");
        assert!(matches!(err, TdError::NotJson { line: 1, .. }), "{err}");
        let mut bad = td();
        bad["properties"]["count"]["forms"][0]["op"] = json!(["readproperty", "writeproperty"]);
        let err = ThingDescription::from_value("t.json", bad).expect_err("readOnly written");
        assert!(
            err.to_string()
                .contains("/properties/count/forms/0/op: writeproperty on a readOnly property"),
            "{err}"
        );
        let mut bad = td();
        bad["properties"]["count"]["maximum"] = json!("ten");
        let err = ThingDescription::from_value("t.json", bad).expect_err("bad maximum");
        assert!(
            err.to_string()
                .contains("/properties/count/maximum: must be a number"),
            "{err}"
        );
        let mut bad = td();
        bad.as_object_mut().unwrap().remove("base");
        let err = ThingDescription::from_value("t.json", bad).expect_err("relative hrefs, no base");
        assert!(
            err.to_string().contains("/properties/count/forms/0/href"),
            "{err}"
        );
    }

    #[test]
    fn serde_paths_become_pointers() {
        assert_eq!(
            pointer("properties.temp.forms[0].op"),
            "/properties/temp/forms/0/op"
        );
        assert_eq!(pointer("."), "");
    }
}

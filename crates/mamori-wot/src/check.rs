//! Structural checks of a Thing Description (TD 1.1, §5) on its raw JSON, so every problem is
//! reported with its JSON path, all at once, before the typed model is built. `wot-td`'s serde
//! model rejects some of these with one message and no path, and accepts others (an affordance
//! with an empty `forms`, an `op` of the wrong affordance, an undefined security name).

use serde_json::{Map, Value};

/// One problem in a TD, at a JSON path (RFC 6901 pointer: `/properties/temp/forms/0/op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a JSON pointer into the TD (`""` is the whole document).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// The TD context URIs a consumer understands (1.0 and 1.1).
const TD_CONTEXTS: [&str; 2] = [
    "https://www.w3.org/2019/wot/td/v1",
    "https://www.w3.org/2022/wot/td/v1.1",
];

const PROPERTY_OPS: &[&str] = &[
    "readproperty",
    "writeproperty",
    "observeproperty",
    "unobserveproperty",
];
const ACTION_OPS: &[&str] = &["invokeaction", "queryaction", "cancelaction"];
const EVENT_OPS: &[&str] = &["subscribeevent", "unsubscribeevent"];
const THING_OPS: &[&str] = &[
    "readallproperties",
    "writeallproperties",
    "readmultipleproperties",
    "writemultipleproperties",
    "observeallproperties",
    "unobserveallproperties",
    "queryallactions",
    "subscribeallevents",
    "unsubscribeallevents",
];
const SCHEMES: &[&str] = &[
    "nosec", "auto", "combo", "basic", "digest", "apikey", "bearer", "psk", "oauth2",
];
const TYPES: &[&str] = &[
    "boolean", "integer", "number", "string", "object", "array", "null",
];

/// Appends one path segment, escaped as RFC 6901 requires.
pub fn join(path: &str, segment: &str) -> String {
    format!("{path}/{}", segment.replace('~', "~0").replace('/', "~1"))
}

/// Every structural problem of `td`; empty when it is a usable TD.
pub fn check(td: &Value) -> Vec<Problem> {
    let mut c = Checker::default();
    let Some(root) = td.as_object() else {
        c.add(
            "",
            format!("a Thing Description is a JSON object, got {}", kind(td)),
        );
        return c.problems;
    };
    c.context(root);
    c.string(root, "", "title", true);
    let defined = c.security_definitions(root);
    c.security_refs(root.get("security"), "/security", &defined, true);
    for (member, ops) in [
        ("properties", PROPERTY_OPS),
        ("actions", ACTION_OPS),
        ("events", EVENT_OPS),
    ] {
        let Some(map) = root.get(member) else {
            continue;
        };
        let path = format!("/{member}");
        let Some(map) = map.as_object() else {
            c.add(&path, format!("must be an object, got {}", kind(map)));
            continue;
        };
        for (name, affordance) in map {
            let at = join(&path, name);
            let Some(affordance) = affordance.as_object() else {
                c.add(&at, format!("must be an object, got {}", kind(affordance)));
                continue;
            };
            c.forms(affordance.get("forms"), &at, ops, &defined, true);
            match member {
                "properties" => c.schema(affordance, &at),
                "actions" => {
                    for part in ["input", "output"] {
                        c.nested_schema(affordance, &at, part);
                    }
                }
                _ => {
                    for part in ["data", "subscription", "cancellation", "dataResponse"] {
                        c.nested_schema(affordance, &at, part);
                    }
                }
            }
        }
    }
    if root.contains_key("forms") {
        c.forms(root.get("forms"), "", THING_OPS, &defined, false);
    }
    c.problems
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn context(&mut self, root: &Map<String, Value>) {
        let found = match root.get("@context") {
            None => return self.add("/@context", "missing (required)"),
            Some(Value::String(s)) => TD_CONTEXTS.contains(&s.as_str()),
            Some(Value::Array(items)) => items
                .iter()
                .any(|i| i.as_str().is_some_and(|s| TD_CONTEXTS.contains(&s))),
            Some(other) => {
                return self.add(
                    "/@context",
                    format!("must be a string or an array, got {}", kind(other)),
                )
            }
        };
        if !found {
            self.add(
                "/@context",
                format!("names no TD context ({})", TD_CONTEXTS.join(" or ")),
            );
        }
    }

    fn string(&mut self, obj: &Map<String, Value>, path: &str, key: &str, required: bool) {
        match obj.get(key) {
            None if required => self.add(&join(path, key), "missing (required)"),
            None | Some(Value::String(_)) => {}
            Some(other) => self.add(
                &join(path, key),
                format!("must be a string, got {}", kind(other)),
            ),
        }
    }

    /// The names defined in `securityDefinitions`.
    fn security_definitions(&mut self, root: &Map<String, Value>) -> Vec<String> {
        let path = "/securityDefinitions";
        let Some(defs) = root.get("securityDefinitions") else {
            self.add(path, "missing (required)");
            return Vec::new();
        };
        let Some(defs) = defs.as_object() else {
            self.add(path, format!("must be an object, got {}", kind(defs)));
            return Vec::new();
        };
        if defs.is_empty() {
            self.add(
                path,
                "defines no security scheme (use {\"nosec_sc\":{\"scheme\":\"nosec\"}})",
            );
        }
        for (name, def) in defs {
            let at = join(path, name);
            match def.get("scheme").and_then(Value::as_str) {
                None => self.add(&join(&at, "scheme"), "missing (required)"),
                Some(s) if !SCHEMES.contains(&s) => self.add(
                    &join(&at, "scheme"),
                    format!("unknown scheme `{s}` ({})", SCHEMES.join(", ")),
                ),
                Some(_) => {}
            }
        }
        defs.keys().cloned().collect()
    }

    fn security_refs(
        &mut self,
        refs: Option<&Value>,
        path: &str,
        defined: &[String],
        required: bool,
    ) {
        let names: Vec<&str> = match refs {
            None if required => return self.add(path, "missing (required)"),
            None => return,
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => {
                let mut names = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => names.push(s),
                        None => self.add(
                            &join(path, &i.to_string()),
                            format!("must be a string, got {}", kind(item)),
                        ),
                    }
                }
                names
            }
            Some(other) => {
                return self.add(
                    path,
                    format!(
                        "must be a string or an array of strings, got {}",
                        kind(other)
                    ),
                )
            }
        };
        for name in names {
            if !defined.iter().any(|d| d == name) {
                self.add(
                    path,
                    format!("`{name}` is not defined in securityDefinitions"),
                );
            }
        }
    }

    fn forms(
        &mut self,
        forms: Option<&Value>,
        at: &str,
        allowed: &[&str],
        defined: &[String],
        required: bool,
    ) {
        let path = format!("{at}/forms");
        let forms = match forms {
            None if required => {
                return self.add(&path, "missing (every affordance needs at least one form)")
            }
            None => return,
            Some(Value::Array(f)) if f.is_empty() => {
                return self.add(&path, "is empty (every affordance needs at least one form)")
            }
            Some(Value::Array(f)) => f,
            Some(other) => {
                return self.add(&path, format!("must be an array, got {}", kind(other)))
            }
        };
        for (i, form) in forms.iter().enumerate() {
            let fp = join(&path, &i.to_string());
            let Some(form) = form.as_object() else {
                self.add(&fp, format!("must be an object, got {}", kind(form)));
                continue;
            };
            match form.get("href") {
                None => self.add(&join(&fp, "href"), "missing (required)"),
                Some(Value::String(h)) if h.is_empty() => self.add(&join(&fp, "href"), "is empty"),
                Some(Value::String(_)) => {}
                Some(other) => self.add(
                    &join(&fp, "href"),
                    format!("must be a string, got {}", kind(other)),
                ),
            }
            let ops: Vec<(String, &Value)> = match form.get("op") {
                None => Vec::new(),
                Some(op @ Value::String(_)) => vec![(join(&fp, "op"), op)],
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(j, v)| (join(&join(&fp, "op"), &j.to_string()), v))
                    .collect(),
                Some(other) => {
                    self.add(
                        &join(&fp, "op"),
                        format!("must be a string or an array, got {}", kind(other)),
                    );
                    Vec::new()
                }
            };
            for (op_path, op) in ops {
                match op.as_str() {
                    Some(s) if allowed.contains(&s) => {}
                    Some(s) => self.add(
                        &op_path,
                        format!(
                            "`{s}` is not an operation here (one of {})",
                            allowed.join(", ")
                        ),
                    ),
                    None => self.add(&op_path, format!("must be a string, got {}", kind(op))),
                }
            }
            if form.contains_key("security") {
                self.security_refs(form.get("security"), &join(&fp, "security"), defined, false);
            }
        }
    }

    fn nested_schema(&mut self, obj: &Map<String, Value>, at: &str, key: &str) {
        match obj.get(key) {
            None => {}
            Some(Value::Object(schema)) => self.schema(schema, &join(at, key)),
            Some(other) => self.add(
                &join(at, key),
                format!("must be a data schema object, got {}", kind(other)),
            ),
        }
    }

    /// A DataSchema's own keywords, then its nested schemas.
    fn schema(&mut self, s: &Map<String, Value>, at: &str) {
        if let Some(t) = s.get("type") {
            match t.as_str() {
                Some(t) if TYPES.contains(&t) => {}
                _ => self.add(
                    &join(at, "type"),
                    format!("must be one of {}, got {t}", TYPES.join(", ")),
                ),
            }
        }
        for key in [
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ] {
            if let Some(v) = s.get(key) {
                if !v.is_number() {
                    self.add(&join(at, key), format!("must be a number, got {}", kind(v)));
                }
            }
        }
        let lower = s
            .get("minimum")
            .or(s.get("exclusiveMinimum"))
            .and_then(Value::as_f64);
        let upper = s
            .get("maximum")
            .or(s.get("exclusiveMaximum"))
            .and_then(Value::as_f64);
        if let (Some(lo), Some(hi)) = (lower, upper) {
            if lo > hi {
                self.add(at, format!("minimum {lo} is above maximum {hi}"));
            }
        }
        for key in ["minLength", "maxLength", "minItems", "maxItems"] {
            if let Some(v) = s.get(key) {
                if v.as_u64().is_none() {
                    self.add(
                        &join(at, key),
                        format!("must be a non-negative integer, got {v}"),
                    );
                }
            }
        }
        for key in ["readOnly", "writeOnly", "observable"] {
            if let Some(v) = s.get(key) {
                if !v.is_boolean() {
                    self.add(
                        &join(at, key),
                        format!("must be a boolean, got {}", kind(v)),
                    );
                }
            }
        }
        if s.get("readOnly") == Some(&Value::Bool(true))
            && s.get("writeOnly") == Some(&Value::Bool(true))
        {
            self.add(at, "cannot be both readOnly and writeOnly");
        }
        match s.get("enum") {
            Some(Value::Array(v)) if v.is_empty() => {
                self.add(&join(at, "enum"), "is empty: no value could ever conform")
            }
            Some(Value::Array(_)) | None => {}
            Some(other) => self.add(
                &join(at, "enum"),
                format!("must be an array, got {}", kind(other)),
            ),
        }
        if let Some(p) = s.get("pattern") {
            match p.as_str() {
                Some(p) if regex::Regex::new(p).is_err() => self.add(
                    &join(at, "pattern"),
                    format!("`{p}` is not a regular expression"),
                ),
                Some(_) => {}
                None => self.add(
                    &join(at, "pattern"),
                    format!("must be a string, got {}", kind(p)),
                ),
            }
        }
        let members = s.get("properties");
        match members {
            None => {}
            Some(Value::Object(props)) => {
                for (name, sub) in props {
                    let sp = join(&join(at, "properties"), name);
                    match sub.as_object() {
                        Some(sub) => self.schema(sub, &sp),
                        None => self.add(
                            &sp,
                            format!("must be a data schema object, got {}", kind(sub)),
                        ),
                    }
                }
            }
            Some(other) => self.add(
                &join(at, "properties"),
                format!("must be an object, got {}", kind(other)),
            ),
        }
        match s.get("required") {
            None => {}
            Some(Value::Array(names)) => {
                for (i, n) in names.iter().enumerate() {
                    let np = join(&join(at, "required"), &i.to_string());
                    match n.as_str() {
                        Some(n) if members.and_then(|m| m.get(n)).is_none() => self.add(
                            &np,
                            format!("`{n}` is required but not among the object's properties"),
                        ),
                        Some(_) => {}
                        None => self.add(&np, format!("must be a string, got {}", kind(n))),
                    }
                }
            }
            Some(other) => self.add(
                &join(at, "required"),
                format!("must be an array, got {}", kind(other)),
            ),
        }
        match s.get("items") {
            None => {}
            Some(Value::Object(item)) => self.schema(item, &join(at, "items")),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = join(&join(at, "items"), &i.to_string());
                    match item.as_object() {
                        Some(item) => self.schema(item, &ip),
                        None => self.add(
                            &ip,
                            format!("must be a data schema object, got {}", kind(item)),
                        ),
                    }
                }
            }
            Some(other) => self.add(
                &join(at, "items"),
                format!(
                    "must be a schema or an array of schemas, got {}",
                    kind(other)
                ),
            ),
        }
        if let Some(Value::Array(alternatives)) = s.get("oneOf") {
            for (i, alt) in alternatives.iter().enumerate() {
                if let Some(alt) = alt.as_object() {
                    self.schema(alt, &join(&join(at, "oneOf"), &i.to_string()));
                }
            }
        }
    }
}

/// The JSON kind of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "title": "lamp",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                "on": {"type": "boolean", "forms": [{"href": "/on", "op": ["readproperty"]}]}
            }
        })
    }

    /// Paths sorted: member order depends on serde_json's map features.
    fn paths(td: &Value) -> Vec<String> {
        let mut p: Vec<String> = check(td).into_iter().map(|p| p.path).collect();
        p.sort();
        p
    }

    #[test]
    fn a_minimal_td_has_no_problem() {
        assert!(check(&minimal()).is_empty(), "{:?}", check(&minimal()));
    }

    #[test]
    fn missing_required_members_are_named() {
        let td = json!({"properties": {}});
        assert_eq!(
            paths(&td),
            vec!["/@context", "/security", "/securityDefinitions", "/title"]
        );
        assert_eq!(check(&json!([1]))[0].path, "");
    }

    #[test]
    fn forms_ops_and_security_names_are_checked_with_their_path() {
        let mut td = minimal();
        td["properties"]["on"]["forms"] = json!([]);
        td["properties"]["dim/level"] = json!({"type": "integer", "forms": [
            {"href": "/dim", "op": ["readproperty", "invokeaction"], "security": "basic_sc"}
        ]});
        td["actions"] = json!({"toggle": {}});
        let problems = check(&td);
        let got = paths(&td);
        assert_eq!(
            got,
            vec![
                "/actions/toggle/forms",
                "/properties/dim~1level/forms/0/op/1",
                "/properties/dim~1level/forms/0/security",
                "/properties/on/forms",
            ],
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p
            .message
            .contains("`invokeaction` is not an operation here")));
    }

    #[test]
    fn data_schema_keywords_are_checked() {
        let mut td = minimal();
        td["properties"]["on"]["type"] = json!("float");
        td["properties"]["level"] = json!({
            "type": "object", "forms": [{"href": "/l"}],
            "properties": {"v": {"type": "number", "minimum": 10, "maximum": 1}},
            "required": ["v", "w"]
        });
        let got = paths(&td);
        assert_eq!(
            got,
            vec![
                "/properties/level/properties/v",
                "/properties/level/required/1",
                "/properties/on/type"
            ]
        );
    }
}

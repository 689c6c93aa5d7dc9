//! Does a value a device returned conform to its DataSchema (TD 1.1 §5.3.2)? Checks type,
//! numeric bounds and multipleOf, enum and const, string length, pattern and format, array
//! length and items, object members (required, nested schemas, writeOnly members that must not
//! be read back) and oneOf. Every violation names its JSON path inside the value.

use serde::Serialize;
use serde_json::Value;

use crate::check::{join, kind};

/// What rule a value broke; a metric label (`mamori_thing_schema_violations_total{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// The JSON type is not the declared one.
    Type,
    /// Below `minimum` / `exclusiveMinimum`.
    Minimum,
    /// Above `maximum` / `exclusiveMaximum`.
    Maximum,
    /// Not a multiple of `multipleOf`.
    MultipleOf,
    /// Not among `enum`, or not the `const`.
    Enum,
    /// A `required` object member is missing.
    Required,
    /// A string or array is shorter or longer than allowed.
    Length,
    /// A string does not match `pattern`.
    Pattern,
    /// A string does not have its `format` (date-time, uri, email, uuid, ipv4, ipv6, …).
    Format,
    /// A `writeOnly` member was returned by a read.
    WriteOnly,
    /// Matches none (or more than one) of `oneOf`.
    OneOf,
}

impl ViolationKind {
    /// The label as written in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Type => "type",
            ViolationKind::Minimum => "minimum",
            ViolationKind::Maximum => "maximum",
            ViolationKind::MultipleOf => "multiple-of",
            ViolationKind::Enum => "enum",
            ViolationKind::Required => "required",
            ViolationKind::Length => "length",
            ViolationKind::Pattern => "pattern",
            ViolationKind::Format => "format",
            ViolationKind::WriteOnly => "write-only",
            ViolationKind::OneOf => "one-of",
        }
    }
}

/// One way a value breaks its schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// JSON pointer inside the value (`""` for the value itself, `/uptime` for a member).
    pub path: String,
    /// JSON pointer of the schema keyword it broke, from the schema given (`/maximum`,
    /// `/properties/status/required`); the probe prefixes the affordance's place in the TD.
    pub schema_path: String,
    /// Which rule.
    pub kind: ViolationKind,
    /// For people: what was expected and what came.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} [TD {}]", self.message, self.schema_path)
    }
}

/// Every violation of `schema` (a DataSchema as JSON) by `value`; empty when it conforms.
///
/// The schema is read as JSON rather than through `wot-td`'s types: its `ArraySchema` does not
/// read `minItems`/`maxItems` (no camelCase renaming in 0.6), and JSON keeps every keyword.
pub fn validate(value: &Value, schema: &Value) -> Vec<Violation> {
    validate_at(value, schema, "")
}

/// [`validate`], with `schema_path` naming where the schema sits (e.g. `/properties/temp` in
/// its TD) so each violation names the keyword's full path.
pub fn validate_at(value: &Value, schema: &Value, schema_path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    check(
        value,
        schema,
        &At {
            value: "",
            schema: schema_path,
        },
        &mut out,
    );
    out
}

/// Where the check is: in the value and in the schema.
struct At<'a> {
    value: &'a str,
    schema: &'a str,
}

fn push(out: &mut Vec<Violation>, at: &At, keyword: &str, kind: ViolationKind, message: String) {
    out.push(Violation {
        path: at.value.to_string(),
        schema_path: join(at.schema, keyword),
        kind,
        message,
    });
}

/// Longest value text echoed in a message.
const ECHO: usize = 80;

fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= ECHO {
        return text;
    }
    let mut end = ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

fn num(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn count(schema: &Value, key: &str) -> Option<usize> {
    schema.get(key).and_then(Value::as_u64).map(|n| n as usize)
}

fn check(value: &Value, schema: &Value, at: &At, out: &mut Vec<Violation>) {
    if let Some(c) = schema.get("const") {
        if !same(value, c) {
            push(
                out,
                at,
                "const",
                ViolationKind::Enum,
                format!("must be the constant {}, got {}", show(c), show(value)),
            );
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.iter().any(|a| same(value, a)) {
            let list: Vec<String> = allowed.iter().map(show).collect();
            push(
                out,
                at,
                "enum",
                ViolationKind::Enum,
                format!("{} is not one of [{}]", show(value), list.join(", ")),
            );
        }
    }
    if let Some(Value::Array(alternatives)) = schema.get("oneOf") {
        let matching = alternatives
            .iter()
            .filter(|alt| validate(value, alt).is_empty())
            .count();
        if matching != 1 {
            push(
                out,
                at,
                "oneOf",
                ViolationKind::OneOf,
                format!(
                    "{} matches {matching} of the {} oneOf schemas (exactly one expected)",
                    show(value),
                    alternatives.len()
                ),
            );
        }
    }
    if let (Some(format), Value::String(s)) = (schema.get("format").and_then(Value::as_str), value)
    {
        if let Some(why) = format_problem(format, s) {
            push(
                out,
                at,
                "format",
                ViolationKind::Format,
                format!("{} is not a {format}: {why}", show(value)),
            );
        }
    }
    let Some(declared) = schema.get("type").and_then(Value::as_str) else {
        return;
    };
    match (declared, value) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) => {}
        ("integer", Value::Number(n)) if is_integer(n) => numeric(n, schema, at, out),
        ("number", Value::Number(n)) => numeric(n, schema, at, out),
        ("string", Value::String(text)) => {
            let chars = text.chars().count();
            let (lo, hi) = (count(schema, "minLength"), count(schema, "maxLength"));
            if lo.is_some_and(|m| chars < m) || hi.is_some_and(|m| chars > m) {
                push(
                    out,
                    at,
                    if hi.is_some_and(|m| chars > m) {
                        "maxLength"
                    } else {
                        "minLength"
                    },
                    ViolationKind::Length,
                    format!(
                        "string of {chars} characters outside [{}, {}]",
                        lo.unwrap_or(0),
                        hi.map_or("∞".into(), |m| m.to_string())
                    ),
                );
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                // An invalid pattern is a TD problem, reported when the TD is checked.
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(text)) {
                    push(
                        out,
                        at,
                        "pattern",
                        ViolationKind::Pattern,
                        format!("{} does not match the pattern {p}", show(value)),
                    );
                }
            }
        }
        ("array", Value::Array(items)) => {
            let (lo, hi) = (count(schema, "minItems"), count(schema, "maxItems"));
            if lo.is_some_and(|m| items.len() < m) || hi.is_some_and(|m| items.len() > m) {
                push(
                    out,
                    at,
                    if hi.is_some_and(|m| items.len() > m) {
                        "maxItems"
                    } else {
                        "minItems"
                    },
                    ViolationKind::Length,
                    format!(
                        "array of {} items outside [{}, {}]",
                        items.len(),
                        lo.unwrap_or(0),
                        hi.map_or("∞".into(), |m| m.to_string())
                    ),
                );
            }
            match schema.get("items") {
                Some(each @ Value::Object(_)) => {
                    let schema_at = join(at.schema, "items");
                    for (i, item) in items.iter().enumerate() {
                        let value_at = join(at.value, &i.to_string());
                        let inner = At {
                            value: &value_at,
                            schema: &schema_at,
                        };
                        check(item, each, &inner, out);
                    }
                }
                Some(Value::Array(tuple)) => {
                    for (i, (item, each)) in items.iter().zip(tuple).enumerate() {
                        let value_at = join(at.value, &i.to_string());
                        let schema_at = join(&join(at.schema, "items"), &i.to_string());
                        let inner = At {
                            value: &value_at,
                            schema: &schema_at,
                        };
                        check(item, each, &inner, out);
                    }
                }
                _ => {}
            }
        }
        ("object", Value::Object(members)) => {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !members.contains_key(name) {
                        let value_at = join(at.value, name);
                        push(
                            out,
                            &At {
                                value: &value_at,
                                schema: at.schema,
                            },
                            "required",
                            ViolationKind::Required,
                            format!("required member `{name}` is missing"),
                        );
                    }
                }
            }
            if let Some(Value::Object(subs)) = schema.get("properties") {
                for (name, sub) in subs {
                    let Some(v) = members.get(name) else { continue };
                    let value_at = join(at.value, name);
                    let schema_at = join(&join(at.schema, "properties"), name);
                    let inner = At {
                        value: &value_at,
                        schema: &schema_at,
                    };
                    if sub.get("writeOnly") == Some(&Value::Bool(true)) {
                        push(
                            out,
                            &inner,
                            "writeOnly",
                            ViolationKind::WriteOnly,
                            format!("member `{name}` is writeOnly but was returned by a read"),
                        );
                    }
                    check(v, sub, &inner, out);
                }
            }
        }
        // A type the TD check already refused, or none of the above: a type mismatch.
        (expected, got) if TYPES.contains(&expected) => push(
            out,
            at,
            "type",
            ViolationKind::Type,
            format!(
                "expected {}, got {} {}",
                type_name(expected),
                kind(got),
                show(got)
            ),
        ),
        _ => {}
    }
}

const TYPES: [&str; 7] = [
    "boolean", "integer", "number", "string", "object", "array", "null",
];

fn numeric(n: &serde_json::Number, schema: &Value, at: &At, out: &mut Vec<Violation>) {
    let x = n.as_f64().unwrap_or(f64::NAN);
    if let Some(m) = num(schema, "minimum").filter(|m| x < *m) {
        push(
            out,
            at,
            "minimum",
            ViolationKind::Minimum,
            format!("{n} is below the minimum {m}"),
        );
    }
    if let Some(m) = num(schema, "exclusiveMinimum").filter(|m| x <= *m) {
        push(
            out,
            at,
            "exclusiveMinimum",
            ViolationKind::Minimum,
            format!("{n} is not above the exclusive minimum {m}"),
        );
    }
    if let Some(m) = num(schema, "maximum").filter(|m| x > *m) {
        push(
            out,
            at,
            "maximum",
            ViolationKind::Maximum,
            format!("{n} is above the maximum {m}"),
        );
    }
    if let Some(m) = num(schema, "exclusiveMaximum").filter(|m| x >= *m) {
        push(
            out,
            at,
            "exclusiveMaximum",
            ViolationKind::Maximum,
            format!("{n} is not below the exclusive maximum {m}"),
        );
    }
    if let Some(m) = num(schema, "multipleOf").filter(|m| *m > 0.0) {
        let q = x / m;
        if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
            push(
                out,
                at,
                "multipleOf",
                ViolationKind::MultipleOf,
                format!("{n} is not a multiple of {m}"),
            );
        }
    }
}

/// JSON numbers compare by value: `1` equals `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `3.0` is an integer in JSON Schema; `3.5` is not.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_name(t: &str) -> &'static str {
    match t {
        "array" => "an array",
        "boolean" => "a boolean",
        "number" => "a number",
        "integer" => "an integer",
        "object" => "an object",
        "string" => "a string",
        _ => "null",
    }
}

/// Why `s` is not of `format`, for the formats JSON Schema defines that a device plausibly
/// sends; unknown formats are not checked (the TD may use its own vocabulary).
fn format_problem(format: &str, s: &str) -> Option<&'static str> {
    let ok = match format {
        "date-time" => is_date_time(s),
        "date" => is_date(s),
        "time" => is_time(s),
        "email" => s
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.')),
        "uri" | "iri" => url::Url::parse(s).is_ok(),
        "uri-reference" | "iri-reference" => !s.contains(char::is_whitespace),
        "uuid" => is_uuid(s),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => return None,
    };
    (!ok).then_some(match format {
        "date-time" => "expected RFC 3339, e.g. 2026-12-06T05:00:00Z",
        "date" => "expected YYYY-MM-DD",
        "time" => "expected hh:mm:ss with an offset",
        "uuid" => "expected 8-4-4-4-12 hex digits",
        _ => "does not parse",
    })
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && digits(p[0], 4)
        && digits(p[1], 2)
        && digits(p[2], 2)
        && (1..=12).contains(&p[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&p[2].parse::<u32>().unwrap_or(0))
}

fn is_time(s: &str) -> bool {
    // hh:mm:ss[.frac](Z|±hh:mm)
    let (clock, offset) = match s.find(['Z', 'z', '+', '-']) {
        Some(i) => s.split_at(i),
        None => return false,
    };
    let clock = clock.split('.').next().unwrap_or("");
    let p: Vec<&str> = clock.split(':').collect();
    let clock_ok = p.len() == 3 && p.iter().all(|x| digits(x, 2));
    let offset_ok = offset.eq_ignore_ascii_case("z")
        || (offset.len() == 6
            && digits(&offset[1..3], 2)
            && &offset[3..4] == ":"
            && digits(&offset[4..6], 2));
    clock_ok && offset_ok
}

fn is_date_time(s: &str) -> bool {
    match s.find(['T', 't', ' ']) {
        Some(i) => is_date(&s[..i]) && is_time(&s[i + 1..]),
        None => false,
    }
}

fn is_uuid(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 5
        && p.iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(x, n)| x.len() == n && x.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Schema = Value;

    fn schema(v: Value) -> Schema {
        v
    }

    fn kinds(value: Value, s: &Schema) -> Vec<(String, ViolationKind)> {
        validate(&value, s)
            .into_iter()
            .map(|v| (v.path, v.kind))
            .collect()
    }

    #[test]
    fn numbers_types_and_bounds() {
        let t = schema(json!({"type": "number", "minimum": -40, "maximum": 125}));
        assert!(kinds(json!(21.5), &t).is_empty());
        assert!(kinds(json!(125), &t).is_empty());
        assert_eq!(
            kinds(json!(500.0), &t),
            vec![("".into(), ViolationKind::Maximum)]
        );
        assert_eq!(
            kinds(json!(-41), &t),
            vec![("".into(), ViolationKind::Minimum)]
        );
        assert_eq!(
            kinds(json!("hot"), &t),
            vec![("".into(), ViolationKind::Type)]
        );
        let i = schema(json!({"type": "integer", "exclusiveMinimum": 0, "multipleOf": 5}));
        assert!(kinds(json!(10), &i).is_empty());
        assert!(
            kinds(json!(10.0), &i).is_empty(),
            "10.0 is an integer in JSON Schema"
        );
        assert_eq!(
            kinds(json!(2.5), &i),
            vec![("".into(), ViolationKind::Type)]
        );
        assert_eq!(
            kinds(json!(0), &i),
            vec![("".into(), ViolationKind::Minimum)]
        );
        assert_eq!(
            kinds(json!(7), &i),
            vec![("".into(), ViolationKind::MultipleOf)]
        );
    }

    #[test]
    fn objects_required_nested_and_write_only() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["idle", "running"]},
                "uptime": {"type": "integer", "minimum": 0},
                "pin": {"type": "string", "writeOnly": true}
            },
            "required": ["state", "uptime"]
        }));
        assert!(kinds(json!({"state": "idle", "uptime": 3}), &s).is_empty());
        assert_eq!(
            kinds(json!({"state": "running"}), &s),
            vec![("/uptime".into(), ViolationKind::Required)]
        );
        let mut got = kinds(json!({"state": "off", "uptime": -1, "pin": "1234"}), &s);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("/pin".into(), ViolationKind::WriteOnly),
                ("/state".into(), ViolationKind::Enum),
                ("/uptime".into(), ViolationKind::Minimum),
            ]
        );
        assert_eq!(
            kinds(json!([1]), &s),
            vec![("".into(), ViolationKind::Type)]
        );
    }

    #[test]
    fn strings_arrays_formats_and_one_of() {
        let s = schema(
            json!({"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"}),
        );
        assert!(kinds(json!("abc"), &s).is_empty());
        assert_eq!(
            kinds(json!("a"), &s),
            vec![("".into(), ViolationKind::Length)]
        );
        assert_eq!(
            kinds(json!("AB"), &s),
            vec![("".into(), ViolationKind::Pattern)]
        );
        let a = schema(json!({"type": "array", "maxItems": 2, "items": {"type": "integer"}}));
        assert_eq!(
            kinds(json!([1, "x"]), &a),
            vec![("/1".into(), ViolationKind::Type)]
        );
        assert_eq!(
            kinds(json!([1, 2, 3]), &a),
            vec![("".into(), ViolationKind::Length)]
        );
        let d = schema(json!({"type": "string", "format": "date-time"}));
        assert!(kinds(json!("2026-12-06T05:00:00.5+09:00"), &d).is_empty());
        assert_eq!(
            kinds(json!("yesterday"), &d),
            vec![("".into(), ViolationKind::Format)]
        );
        let o = schema(json!({"oneOf": [{"type": "integer"}, {"type": "string"}]}));
        assert!(kinds(json!(1), &o).is_empty());
        assert_eq!(
            kinds(json!(true), &o),
            vec![("".into(), ViolationKind::OneOf)]
        );
        let c = schema(json!({"const": 1}));
        assert!(kinds(json!(1.0), &c).is_empty());
        assert_eq!(kinds(json!(2), &c), vec![("".into(), ViolationKind::Enum)]);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let s = schema(json!({"type": "number"}));
        let v = validate(&json!("x".repeat(10_000)), &s);
        assert!(v[0].message.len() < 200, "{}", v[0].message);
        assert!(v[0].message.contains("10002 bytes"));
    }
}

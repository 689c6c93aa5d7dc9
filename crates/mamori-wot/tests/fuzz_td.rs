//! Thing Descriptions and property values come from devices, which may be broken or hostile.
//! Mutated TDs and mutated values never panic the parser, the conformance check or the schema
//! validator, and every error names where it comes from.

use mamori_wot::schema::validate;
use mamori_wot::td::ThingDescription;
use proptest::prelude::*;
use serde_json::Value;

/// A TD shaped like node-wot's (the lab's servient): forms with defaults, security schemes,
/// observable properties, an action and a long-poll event.
const TD: &str = r#"{
  "@context": ["https://www.w3.org/2022/wot/td/v1.1", {"@language": "en"}],
  "@type": "Thing",
  "title": "smart-plug",
  "id": "urn:dev:ops:plug-1",
  "base": "http://127.0.0.1:8080/smart-plug/",
  "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}, "basic_sc": {"scheme": "basic", "in": "header"}},
  "security": ["nosec_sc"],
  "properties": {
    "power": {"type": "number", "minimum": 0, "maximum": 3600, "unit": "W", "readOnly": true,
      "observable": true, "forms": [
        {"href": "properties/power", "op": ["readproperty"], "contentType": "application/json"},
        {"href": "properties/power/observable", "op": ["observeproperty"], "subprotocol": "longpoll"}]},
    "state": {"type": "string", "enum": ["on", "off"], "forms": [{"href": "properties/state"}]},
    "schedule": {"type": "array", "maxItems": 8, "items": {"type": "object",
      "properties": {"at": {"type": "string", "format": "date-time"}, "on": {"type": "boolean"}},
      "required": ["at", "on"]}, "forms": [{"href": "properties/schedule", "security": ["basic_sc"]}]}
  },
  "actions": {"toggle": {"safe": false, "idempotent": false, "forms": [{"href": "actions/toggle"}]}},
  "events": {"overload": {"data": {"type": "integer", "minimum": 0},
    "forms": [{"href": "events/overload", "subprotocol": "longpoll", "op": ["subscribeevent"]}]}}
}"#;

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop_oneof![
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b']'),
        Just(b':'),
        Just(b','),
        Just(b'\\'),
        Just(b'9'),
        Just(b'-'),
        Just(0x1b),
        Just(0),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), special.clone()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), prop::collection::vec(special, 1..12))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Replace(at, b) => {
            let i = at % len;
            if let Some(x) = bytes.get_mut(i) {
                *x = *b;
            }
        }
        Mutation::Delete(at, n) => {
            let i = at % len;
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Insert(at, extra) => {
            let i = at % (bytes.len() + 1);
            bytes.splice(i..i, extra.iter().copied());
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
    }
}

/// Everything the Thing monitor (and `--thing-description`) does with a TD it accepted.
fn use_td(td: &ThingDescription) {
    let (targets, _skipped) = td.readable_properties();
    for t in &targets {
        assert!(t.url.starts_with("http"), "{}", t.url);
    }
    let _ = td.subscriptions();
    let _ = td.action("toggle");
    let _ = td.title();
    // the request signal's view of it
    for f in td.http_forms() {
        assert!(f.href.starts_with('/'), "{}", f.href);
        assert!(!f.method.is_empty());
    }
}

#[test]
fn the_seed_td_is_valid() {
    let td = ThingDescription::parse("plug.td.json", TD.as_bytes()).expect("valid TD");
    assert_eq!(td.readable_properties().0.len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_tds_never_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut bytes = TD.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match ThingDescription::parse("plug.td.json", &bytes) {
            Ok(td) => use_td(&td),
            Err(e) => {
                prop_assert_eq!(e.origin(), "plug.td.json");
                let text = e.to_string();
                prop_assert!(text.contains("plug.td.json"), "{}", text);
            }
        }
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            let _ = mamori_wot::check::check(&value);
        }
    }

    /// A device's reply to a property read, mutated, against the property's schema.
    #[test]
    fn mutated_values_never_panic_the_validator(
        mutations in prop::collection::vec(mutation(), 1..4),
        which in 0usize..3,
    ) {
        let td: Value = serde_json::from_str(TD).expect("seed");
        let (name, reply) = [
            ("power", "1234.5"),
            ("state", "\"on\""),
            ("schedule", r#"[{"at": "2026-12-07T02:00:00Z", "on": true}, {"at": "2026-12-07T06:00:00Z", "on": false}]"#),
        ][which];
        let schema = &td["properties"][name];
        let mut bytes = reply.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            for v in validate(&value, schema) {
                // a violation points into the value it was found in (a missing required member:
                // at its place inside the object that lacks it)
                let parent = v.path.rsplit_once('/').map_or("", |(p, _)| p);
                prop_assert!(value.pointer(parent).is_some(), "{} not in {}", v.path, value);
                prop_assert!(!v.message.is_empty());
            }
        }
    }
}

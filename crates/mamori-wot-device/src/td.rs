//! The Thing Description (TD 1.1) each thing serves about itself.

use serde_json::{json, Value};

use crate::auth::Security;

/// The TD of thing `index` called `name`; every href is absolute under `base`
/// (`http://HOST`), so a consumer needs no `base` resolution.
pub fn thing_description(name: &str, index: usize, base: &str, security: &Security) -> Value {
    let thing = format!("{base}/things/{index}");
    let property = |p: &str| format!("{thing}/properties/{p}");
    let observe = format!("{thing}/properties/temperature/observe");
    let overheat = format!("{thing}/events/overheat");
    let (scheme_name, scheme) = match security {
        Security::NoSec => ("nosec_sc", json!({ "scheme": "nosec" })),
        Security::Basic { .. } => ("basic_sc", json!({ "scheme": "basic", "in": "header" })),
        Security::Bearer { .. } => ("bearer_sc", json!({ "scheme": "bearer", "in": "header" })),
    };
    json!({
        "@context": ["https://www.w3.org/2022/wot/td/v1.1"],
        "id": format!("urn:mamori:device:{name}"),
        "title": name,
        "description": "mamori WoT device simulator",
        "securityDefinitions": { scheme_name: scheme },
        "security": [scheme_name],
        "properties": {
            "temperature": {
                "type": "number",
                "minimum": -40,
                "maximum": 125,
                "unit": "celsius",
                "readOnly": true,
                "observable": true,
                "forms": [
                    form(&property("temperature"), "readproperty", "GET"),
                    longpoll(form(&observe, "observeproperty", "GET")),
                ],
            },
            "counter": {
                "type": "integer",
                "minimum": 0,
                "readOnly": true,
                "forms": [form(&property("counter"), "readproperty", "GET")],
            },
            "status": {
                "type": "object",
                "readOnly": true,
                "properties": {
                    "state": { "type": "string", "enum": ["idle", "running", "error"] },
                    "uptime": { "type": "integer", "minimum": 0 },
                },
                "required": ["state", "uptime"],
                "forms": [form(&property("status"), "readproperty", "GET")],
            },
            "mode": {
                "type": "string",
                "enum": ["auto", "manual"],
                "forms": [
                    form(&property("mode"), "readproperty", "GET"),
                    form(&property("mode"), "writeproperty", "PUT"),
                ],
            },
        },
        "actions": {
            "reset": {
                "description": "Sets counter back to 0.",
                "safe": false,
                "idempotent": true,
                "output": {
                    "type": "object",
                    "properties": { "ok": { "type": "boolean" } },
                },
                "forms": [form(&format!("{thing}/actions/reset"), "invokeaction", "POST")],
            },
        },
        "events": {
            "overheat": {
                "data": { "type": "number" },
                "forms": [longpoll(form(&overheat, "subscribeevent", "GET"))],
            },
        },
    })
}

/// A form with its operation and (explicit, though these are the HTTP binding's defaults) method.
fn form(href: &str, op: &str, method: &str) -> Value {
    json!({
        "href": href,
        "contentType": "application/json",
        "op": [op],
        "htv:methodName": method,
    })
}

fn longpoll(mut form: Value) -> Value {
    form["subprotocol"] = json!("longpoll");
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(security: &Security) -> Value {
        thing_description("cam-3", 3, "http://10.0.0.7:9000", security)
    }

    /// Every form in the TD, with the affordance it belongs to.
    fn forms(td: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for kind in ["properties", "actions", "events"] {
            for (name, affordance) in td[kind].as_object().unwrap() {
                for form in affordance["forms"].as_array().unwrap() {
                    out.push((format!("{kind}/{name}"), form.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn identity_and_context() {
        let td = td(&Security::NoSec);
        assert_eq!(
            td["@context"],
            json!(["https://www.w3.org/2022/wot/td/v1.1"])
        );
        assert_eq!(td["id"], "urn:mamori:device:cam-3");
        assert_eq!(td["title"], "cam-3");
    }

    #[test]
    fn every_property_is_readable() {
        let td = td(&Security::NoSec);
        let properties = td["properties"].as_object().unwrap();
        let names: Vec<_> = properties.keys().map(String::as_str).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        for (name, property) in properties {
            let readable = property["forms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["op"].as_array().unwrap().contains(&json!("readproperty")));
            assert!(readable, "{name} has no readproperty form");
        }
    }

    #[test]
    fn every_form_is_absolute_json_with_ops() {
        for (affordance, form) in forms(&td(&Security::NoSec)) {
            let href = form["href"].as_str().unwrap();
            assert!(
                href.starts_with("http://10.0.0.7:9000/things/3/"),
                "{affordance}: {href}"
            );
            assert_eq!(form["contentType"], "application/json", "{affordance}");
            assert!(!form["op"].as_array().unwrap().is_empty(), "{affordance}");
        }
    }

    #[test]
    fn hrefs_match_the_served_paths() {
        let td = td(&Security::NoSec);
        let temperature = &td["properties"]["temperature"]["forms"];
        assert_eq!(
            temperature[0]["href"],
            "http://10.0.0.7:9000/things/3/properties/temperature"
        );
        assert_eq!(
            temperature[1]["href"],
            "http://10.0.0.7:9000/things/3/properties/temperature/observe"
        );
        assert_eq!(temperature[1]["op"], json!(["observeproperty"]));
        assert_eq!(temperature[1]["subprotocol"], "longpoll");
        let mode = &td["properties"]["mode"]["forms"];
        assert_eq!(mode[1]["op"], json!(["writeproperty"]));
        assert_eq!(mode[1]["htv:methodName"], "PUT");
        let event = &td["events"]["overheat"]["forms"][0];
        assert_eq!(
            event["href"],
            "http://10.0.0.7:9000/things/3/events/overheat"
        );
        assert_eq!(event["subprotocol"], "longpoll");
        assert_eq!(
            td["actions"]["reset"]["forms"][0]["href"],
            "http://10.0.0.7:9000/things/3/actions/reset"
        );
    }

    #[test]
    fn schemas_carry_the_documented_constraints() {
        let td = td(&Security::NoSec);
        let p = &td["properties"];
        assert_eq!(p["temperature"]["minimum"], -40);
        assert_eq!(p["temperature"]["maximum"], 125);
        assert_eq!(p["temperature"]["observable"], true);
        assert_eq!(p["counter"]["type"], "integer");
        assert_eq!(p["status"]["required"], json!(["state", "uptime"]));
        assert_eq!(p["mode"]["enum"], json!(["auto", "manual"]));
        assert_eq!(td["events"]["overheat"]["data"]["type"], "number");
    }

    #[test]
    fn security_follows_the_mode() {
        let nosec = td(&Security::NoSec);
        assert_eq!(nosec["security"], json!(["nosec_sc"]));
        assert_eq!(nosec["securityDefinitions"]["nosec_sc"]["scheme"], "nosec");

        let basic = td(&Security::Basic {
            user: "u".into(),
            password: "p".into(),
        });
        assert_eq!(basic["security"], json!(["basic_sc"]));
        assert_eq!(
            basic["securityDefinitions"],
            json!({ "basic_sc": { "scheme": "basic", "in": "header" } })
        );

        let bearer = td(&Security::Bearer { token: "t".into() });
        assert_eq!(bearer["security"], json!(["bearer_sc"]));
        assert_eq!(
            bearer["securityDefinitions"]["bearer_sc"]["scheme"],
            "bearer"
        );
        // The credentials themselves never appear in the TD.
        assert!(!basic.to_string().contains("\"p\""));
    }
}

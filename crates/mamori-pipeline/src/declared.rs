//! A device's declared HTTP API (from its W3C WoT Thing Description), for the request signal.
//!
//! Training sees only the endpoints its clients happened to call. A Thing Description says
//! which requests the device offers and what each does. An endpoint never called in training
//! that only *reads* (a `readproperty` form, a `queryaction`, an event subscription) is the device
//! being used as documented and changes nothing, so it need not page anyone; one that writes or
//! acts (`invokeaction`, `writeproperty`) or that the device does not declare at all still does,
//! and the alert says which it was.

use serde::{Deserialize, Serialize};

/// One request form of a Thing Description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredRequest {
    /// HTTP method (`GET`, `PUT`, …).
    pub method: String,
    /// Path; a segment holding a URI-template expression (`{id}`) stands for any one segment.
    pub path: String,
    /// Query parameter names the form may carry; `*` allows any (an exploded `{?params*}`).
    pub query: Vec<String>,
    /// Only reads the device's state.
    pub reads: bool,
    /// What it is, for explanations: `action pause`, `property threshold (write)`.
    pub what: String,
}

/// What a Thing Description says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declaration {
    /// Every form it matches only reads.
    Read(String),
    /// It matches a form that writes or acts.
    Change(String),
    /// No form matches.
    Undeclared,
}

impl DeclaredRequest {
    /// A form from its method, its href (absolute URL or path, resolved against the TD's base
    /// by the caller; RFC 6570 templates allowed, e.g. `/0/config/get{?query}`), whether its
    /// operation only reads, and a short description.
    pub fn new(method: &str, href: &str, reads: bool, what: impl Into<String>) -> Self {
        let (path, query) = split_href(href);
        Self {
            method: method.to_ascii_uppercase(),
            path,
            query,
            reads,
            what: what.into(),
        }
    }

    /// Whether a request (method, path, query parameter names) is this form.
    pub fn matches(&self, method: &str, path: &str, names: &[&str]) -> bool {
        if self.method != method {
            return false;
        }
        let want: Vec<&str> = self.path.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        if want.len() != got.len() {
            return false;
        }
        let path_ok = want.iter().zip(&got).all(|(w, g)| {
            if w.contains('{') {
                !g.is_empty()
            } else {
                w == g
            }
        });
        path_ok
            && (self.query.iter().any(|q| q == "*")
                || names.iter().all(|n| self.query.iter().any(|q| q == n)))
    }
}

/// What `forms` declare about a request key of the context signals (`PORT METHOD /path?a&b`;
/// the port is not compared: a container's port mapping changes it, and the TD names the
/// address clients use).
pub fn declaration(forms: &[DeclaredRequest], request_key: &str) -> Declaration {
    let mut words = request_key.splitn(3, ' ');
    let (_port, method, target) = (words.next(), words.next(), words.next());
    let (Some(method), Some(target)) = (method, target) else {
        return Declaration::Undeclared;
    };
    if !target.starts_with('/') {
        return Declaration::Undeclared;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let names: Vec<&str> = query.split('&').filter(|n| !n.is_empty()).collect();
    let mut read = None;
    for f in forms.iter().filter(|f| f.matches(method, path, &names)) {
        if !f.reads {
            return Declaration::Change(f.what.clone());
        }
        read.get_or_insert_with(|| f.what.clone());
    }
    read.map_or(Declaration::Undeclared, Declaration::Read)
}

/// The path (with its template expressions) and the query names of an href.
fn split_href(href: &str) -> (String, Vec<String>) {
    let rest = match href.split_once("://") {
        Some((_, after)) => after.find('/').map_or("/", |i| &after[i..]),
        None => href,
    };
    let mut path = String::new();
    let mut names = Vec::new();
    let mut in_query = false;
    let mut literal = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                let expr: String = chars.by_ref().take_while(|&c| c != '}').collect();
                match expr.chars().next() {
                    Some('?' | '&') => {
                        in_query = true;
                        names.extend(template_vars(&expr[1..]));
                    }
                    Some('#') => break,
                    // `{/a}` expands to `/value`: one more segment
                    Some('/') if !in_query => path.push_str(&format!("/{{{}}}", &expr[1..])),
                    _ if !in_query => path.push_str(&format!("{{{expr}}}")),
                    _ => {}
                }
            }
            '?' if !in_query => in_query = true,
            '#' => break,
            c if in_query => literal.push(c),
            c => path.push(c),
        }
    }
    for pair in literal.split('&').filter(|p| !p.is_empty()) {
        names.push(pair.split_once('=').map_or(pair, |(n, _)| n).to_string());
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    names.sort_unstable();
    names.dedup();
    (path, names)
}

/// The variable names of a template expression's list (`a,b*,c:3`); an exploded one (`*`)
/// allows any names.
fn template_vars(list: &str) -> Vec<String> {
    list.split(',')
        .map(|v| {
            if v.ends_with('*') {
                "*".to_string()
            } else {
                v.split(':').next().unwrap_or(v).trim().to_string()
            }
        })
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn motion_like() -> Vec<DeclaredRequest> {
        vec![
            DeclaredRequest::new(
                "GET",
                "http://cam:8080/0/detection/status",
                true,
                "property detectionStatus",
            ),
            DeclaredRequest::new("GET", "/0/config/get{?query}", true, "property option"),
            DeclaredRequest::new("get", "/0/config/set{?option*}", false, "action setOption"),
            DeclaredRequest::new("GET", "/0/detection/pause", false, "action pause"),
            DeclaredRequest::new(
                "GET",
                "/things/{id}/state?verbose=1",
                true,
                "property state",
            ),
            DeclaredRequest::new("PUT", "/things/{id}/state", false, "property state (write)"),
        ]
    }

    #[test]
    fn hrefs_keep_the_path_template_and_the_query_names() {
        assert_eq!(
            split_href("http://cam:8080/0/config/get{?query}"),
            ("/0/config/get".into(), vec!["query".into()])
        );
        assert_eq!(
            split_href("things{/id}/state?verbose=1{&fields,limit:3}"),
            (
                "/things/{id}/state".into(),
                vec!["fields".into(), "limit".into(), "verbose".into()]
            )
        );
        assert_eq!(split_href("https://h"), ("/".into(), vec![]));
        assert_eq!(split_href("/a{?p*}#frag"), ("/a".into(), vec!["*".into()]));
    }

    #[test]
    fn reads_writes_and_undeclared_requests_are_told_apart() {
        let forms = motion_like();
        let read = |w: &str| Declaration::Read(w.to_string());
        let change = |w: &str| Declaration::Change(w.to_string());
        assert_eq!(
            declaration(&forms, "18080 GET /0/detection/status"),
            read("property detectionStatus")
        );
        assert_eq!(
            declaration(&forms, "8080 GET /0/config/get?query"),
            read("property option")
        );
        assert_eq!(
            declaration(&forms, "8080 GET /0/config/get?query&x"),
            Declaration::Undeclared,
            "a parameter the form does not name"
        );
        assert_eq!(
            declaration(&forms, "8080 GET /0/config/set?threshold"),
            change("action setOption")
        );
        assert_eq!(
            declaration(&forms, "8080 GET /0/detection/pause"),
            change("action pause")
        );
        assert_eq!(
            declaration(&forms, "8080 POST /0/detection/status"),
            Declaration::Undeclared,
            "another method"
        );
        assert_eq!(
            declaration(&forms, "80 GET /things/lamp/state"),
            read("property state")
        );
        assert_eq!(
            declaration(&forms, "80 PUT /things/lamp/state"),
            change("property state (write)")
        );
        assert_eq!(
            declaration(&forms, "80 GET /things//state"),
            Declaration::Undeclared
        );
        assert_eq!(declaration(&forms, "23 login #."), Declaration::Undeclared);
        assert_eq!(declaration(&forms, "garbage"), Declaration::Undeclared);
    }

    #[test]
    fn a_request_matching_a_read_and_a_write_form_counts_as_a_change() {
        let forms = vec![
            DeclaredRequest::new("GET", "/x", true, "property x"),
            DeclaredRequest::new("GET", "/x", false, "property x (write)"),
        ];
        assert_eq!(
            declaration(&forms, "80 GET /x"),
            Declaration::Change("property x (write)".into())
        );
    }
}

//! Path names as audit logs them (relative to the CWD record or a directory descriptor), made
//! absolute and lexically normalised, and the small glob matcher the pruning rules use.

/// Joins a name to the directory it is relative to and normalises the result. Absolute names
/// ignore `base`; a relative name without a base stays relative (normalised).
pub(crate) fn resolve(name: &str, base: Option<&str>) -> String {
    if name.starts_with('/') {
        return normalize(name);
    }
    match base {
        Some(b) if b.starts_with('/') => {
            let mut joined = String::with_capacity(b.len() + 1 + name.len());
            joined.push_str(b);
            joined.push('/');
            joined.push_str(name);
            normalize(&joined)
        }
        _ => normalize(name),
    }
}

/// Removes `.` components, empty components and trailing slashes, and folds `..` into its parent
/// lexically: audit names are strings as passed, not the kernel's resolution, so symlinks
/// are not followed here (the inode is the identity; the path is the label).
pub(crate) fn normalize(p: &str) -> String {
    let absolute = p.starts_with('/');
    // Fast path: most names are already clean.
    if absolute
        && !p.contains("//")
        && !p.contains("/./")
        && !p.contains("/../")
        && !p.ends_with("/.")
        && !p.ends_with("/..")
        && (p.len() == 1 || !p.ends_with('/'))
    {
        return p.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let body = parts.join("/");
    if absolute {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

/// Shell-like glob: `*` matches any run of characters (slashes included), `?` one character;
/// everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_names_against_the_cwd() {
        assert_eq!(resolve("x", Some("/tmp")), "/tmp/x");
        assert_eq!(resolve("./x", Some("/tmp/")), "/tmp/x");
        assert_eq!(
            resolve("../etc/passwd", Some("/home/u")),
            "/home/etc/passwd"
        );
        assert_eq!(resolve("/a//b/./c/../d", Some("/tmp")), "/a/b/d");
        assert_eq!(resolve("x/../y", None), "y");
        assert_eq!(resolve("/..", None), "/");
        assert_eq!(resolve("/tmp/", None), "/tmp");
        assert_eq!(resolve("/", None), "/");
    }

    #[test]
    fn globs() {
        assert!(glob_match("/proc/*", "/proc/self/maps"));
        assert!(!glob_match("/proc/*", "/procx"));
        assert!(glob_match("*.so.*", "/usr/lib/libc.so.6"));
        assert!(glob_match("*.so", "/opt/x/libfoo.so"));
        assert!(!glob_match("*.so", "/opt/x/libfoo.so.1"));
        assert!(glob_match("*/.cache/*", "/home/u/.cache/fontconfig/x"));
        assert!(glob_match("/etc/ld.so.cache", "/etc/ld.so.cache"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("a*b*c", "aXbYc"));
    }
}

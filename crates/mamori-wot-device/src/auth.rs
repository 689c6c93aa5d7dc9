//! The device's security scheme: what its TD declares and how the `Authorization` header of a
//! request to a thing endpoint is checked.

/// The security scheme every thing of the device uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// No credentials needed.
    NoSec,
    /// HTTP Basic with this user and password.
    Basic { user: String, password: String },
    /// `Authorization: Bearer TOKEN` with this token.
    Bearer { token: String },
}

impl Security {
    /// The mode's name as given to `--security`.
    pub fn name(&self) -> &'static str {
        match self {
            Security::NoSec => "nosec",
            Security::Basic { .. } => "basic",
            Security::Bearer { .. } => "bearer",
        }
    }

    /// Whether a request carrying this `Authorization` header value may use a thing endpoint.
    pub fn authorizes(&self, authorization: Option<&str>) -> bool {
        let (scheme, credentials) = match authorization {
            Some(value) => {
                let value = value.trim();
                match value.split_once([' ', '\t']) {
                    Some((scheme, credentials)) => (scheme, credentials.trim()),
                    None => (value, ""),
                }
            }
            None => ("", ""),
        };
        match self {
            Security::NoSec => true,
            // The auth scheme name is case-insensitive (RFC 9110 §11.1); credentials are not.
            Security::Basic { user, password } => {
                scheme.eq_ignore_ascii_case("basic")
                    && decode_base64(credentials).as_deref()
                        == Some(format!("{user}:{password}").as_bytes())
            }
            Security::Bearer { token } => {
                scheme.eq_ignore_ascii_case("bearer") && credentials == token
            }
        }
    }

    /// The `WWW-Authenticate` challenge sent with a 401.
    pub fn challenge(&self) -> &'static str {
        match self {
            Security::NoSec => "",
            Security::Basic { .. } => "Basic realm=\"mamori-wot-device\"",
            Security::Bearer { .. } => "Bearer realm=\"mamori-wot-device\"",
        }
    }
}

/// Decodes standard base64 (RFC 4648 §4), padding optional; `None` if it isn't base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let text = text.as_bytes();
    // Padding is optional (and not checked): it carries no data.
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => text,
    };
    if unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    for chunk in unpadded.chunks(4) {
        let mut bits = 0u32;
        for &c in chunk {
            bits = (bits << 6) | value(c)?;
        }
        // A chunk of n characters carries n*6 bits, of which the whole bytes are data.
        bits <<= 6 * (4 - chunk.len()) as u32;
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> Security {
        Security::Basic {
            user: "admin".into(),
            password: "s3cret".into(),
        }
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("YWRtaW46czNjcmV0").unwrap(), b"admin:s3cret");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Y"), None);
        assert_eq!(decode_base64("YW*="), None);
        assert_eq!(decode_base64("Y==="), None);
    }

    #[test]
    fn basic_needs_the_right_user_and_password() {
        // base64("admin:s3cret")
        assert!(basic().authorizes(Some("Basic YWRtaW46czNjcmV0")));
        assert!(basic().authorizes(Some("basic   YWRtaW46czNjcmV0 ")));
        // base64("admin:wrong")
        assert!(!basic().authorizes(Some("Basic YWRtaW46d3Jvbmc=")));
        assert!(!basic().authorizes(Some("Bearer YWRtaW46czNjcmV0")));
        assert!(!basic().authorizes(Some("Basic")));
        assert!(!basic().authorizes(Some("Basic !!!")));
        assert!(!basic().authorizes(None));
    }

    #[test]
    fn bearer_needs_the_token() {
        let bearer = Security::Bearer {
            token: "t0k".into(),
        };
        assert!(bearer.authorizes(Some("Bearer t0k")));
        assert!(bearer.authorizes(Some("BEARER t0k")));
        assert!(!bearer.authorizes(Some("Bearer t0K")));
        assert!(!bearer.authorizes(Some("t0k")));
        assert!(!bearer.authorizes(None));
        assert_eq!(bearer.challenge(), "Bearer realm=\"mamori-wot-device\"");
    }

    #[test]
    fn nosec_lets_everyone_in() {
        assert!(Security::NoSec.authorizes(None));
        assert!(Security::NoSec.authorizes(Some("Basic whatever")));
    }
}

//! The command line: flags, each with an environment variable behind it (a flag wins), so a
//! container can be configured with `-e` alone.

use std::net::ToSocketAddrs;

use crate::auth::Security;
use crate::fault::Fault;

/// Most things one device serves (the benchmark uses 1,000).
pub const MAX_THINGS: usize = 100_000;

/// `--help`.
pub const USAGE: &str = "\
mamori-wot-device: a W3C WoT device simulator for mamori's tests and benchmarks. Serves its
Thing Descriptions (TD 1.1) and properties over HTTP/1.1 and can be switched into faults.

Usage: mamori-wot-device [OPTIONS]

Options (each also read from the environment variable in brackets; a flag wins):
  --listen HOST:PORT   address to serve on          [MAMORI_DEVICE_LISTEN, default 127.0.0.1:8080]
  --title NAME         thing title (A-Z a-z 0-9 . _ ~ -); with N > 1 things, thing i is NAME-i
                                                    [MAMORI_DEVICE_TITLE, default device]
  --things N           things served, 1 to 100000   [MAMORI_DEVICE_THINGS, default 1]
  --security MODE      nosec, basic or bearer       [MAMORI_DEVICE_SECURITY, default nosec]
  --user USER          basic: the user              [MAMORI_DEVICE_USER]
  --password PASSWORD  basic: the password          [MAMORI_DEVICE_PASSWORD]
  --token TOKEN        bearer: the token            [MAMORI_DEVICE_TOKEN]
  --fault FAULT        fault in force from start    [MAMORI_DEVICE_FAULT, default none]
  -h, --help           print this and exit
  (--flag=VALUE works too. --user, --password, --token are ignored by other modes.)

Endpoints (thing i in 0..N; TDs and /control need no credentials):
  GET  /                                         JSON array of the TD URLs
  GET  /.well-known/wot                          the TD with one thing, else the array
  GET  /things/{i}                               TD of thing i (hrefs from the Host header)
  GET  /things/{i}/properties/{temperature|counter|status|mode}
  PUT  /things/{i}/properties/mode               body \"auto\" or \"manual\" (JSON) -> 204
  GET  /things/{i}/properties/temperature/observe   long-poll: the next value (every 1 s)
  POST /things/{i}/actions/reset                 counter back to 0 -> {\"ok\":true}
  GET  /things/{i}/events/overheat               long-poll: the next event (every 2 s)
  GET  /control/fault                            the fault in force (text)
  POST /control/fault                            body NAME or {\"fault\":\"NAME\"}: switch

Faults (on property reads of every thing):
  none            behave
  wrong-type      temperature is \"hot\"
  out-of-range    temperature is 500.0
  missing-member  status has no uptime
  hang            every request but /control is read and never answered
  crash           exit with status 1 (100 ms after the /control reply; 1 s after start)
  slow:MS         property reads wait MS milliseconds (up to 600000)
  huge            temperature is a 10 MiB JSON string
  not-json        temperature is <html>oops</html> (text/html)
  http-500        property reads answer 500

Exit status: 0 on SIGTERM/SIGINT, 1 on the crash fault or when it can't listen, 2 on bad usage.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve.
    Run(Config),
    /// Print [`USAGE`].
    Help,
}

/// A device's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: String,
    pub title: String,
    pub things: usize,
    pub security: Security,
    pub fault: Fault,
}

/// The flags, with their environment variables.
const FLAGS: &[(&str, &str)] = &[
    ("listen", "MAMORI_DEVICE_LISTEN"),
    ("title", "MAMORI_DEVICE_TITLE"),
    ("things", "MAMORI_DEVICE_THINGS"),
    ("security", "MAMORI_DEVICE_SECURITY"),
    ("user", "MAMORI_DEVICE_USER"),
    ("password", "MAMORI_DEVICE_PASSWORD"),
    ("token", "MAMORI_DEVICE_TOKEN"),
    ("fault", "MAMORI_DEVICE_FAULT"),
];

/// Parses `args` (without the program name); `env` looks up an environment variable. The error
/// names the flag or variable at fault.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut flags: Vec<Option<String>> = vec![None; FLAGS.len()];
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let Some(slot) = FLAGS.iter().position(|(f, _)| *f == name) else {
            return Err(format!("unknown flag --{name}"));
        };
        // `--title --things 3` is a forgotten value, not a title; `--title=--x` still works.
        let value = match inline.or_else(|| args.next().filter(|v| !v.starts_with("--"))) {
            Some(value) => value,
            None => return Err(format!("--{name} needs a value")),
        };
        flags[slot] = Some(value);
    }
    let settings = Settings { flags, env };

    let listen = match settings.get("listen") {
        Some((from, addr)) => {
            if let Err(e) = addr.to_socket_addrs() {
                return Err(format!(
                    "{from}: {addr:?} is not an address to listen on (want HOST:PORT): {e}"
                ));
            }
            addr
        }
        None => "127.0.0.1:8080".to_string(),
    };
    let title = match settings.get("title") {
        Some((from, title)) => {
            let ok = !title.is_empty()
                && title.len() <= 64
                && title
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
            if !ok {
                return Err(format!(
                    "{from}: {title:?} is not a title: want up to 64 of A-Z a-z 0-9 . _ ~ - \
                     (it goes into the TD's id, a URN)"
                ));
            }
            title
        }
        None => "device".to_string(),
    };
    let things = match settings.get("things") {
        Some((from, n)) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_THINGS).contains(&n) => n,
            _ => {
                return Err(format!(
                    "{from}: {n:?} is not a number of things from 1 to {MAX_THINGS}"
                ))
            }
        },
        None => 1,
    };
    let security = match settings.get("security") {
        None => Security::NoSec,
        Some((_, mode)) if mode == "nosec" => Security::NoSec,
        Some((_, mode)) if mode == "basic" => {
            let (from, user) = settings.require("user", "basic")?;
            if user.contains(':') {
                return Err(format!("{from}: a basic user can't contain ':'"));
            }
            let (_, password) = settings.require("password", "basic")?;
            Security::Basic { user, password }
        }
        Some((_, mode)) if mode == "bearer" => {
            let (from, token) = settings.require("token", "bearer")?;
            if token
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err(format!("{from}: a bearer token can't contain whitespace"));
            }
            Security::Bearer { token }
        }
        Some((from, mode)) => {
            return Err(format!(
                "{from}: unknown security mode {mode:?} (known: nosec, basic, bearer)"
            ))
        }
    };
    let fault = match settings.get("fault") {
        Some((from, name)) => Fault::parse(&name).map_err(|e| format!("{from}: {e}"))?,
        None => Fault::None,
    };
    Ok(Command::Run(Config {
        listen,
        title,
        things,
        security,
        fault,
    }))
}

/// The flags given, and the environment behind them.
struct Settings<E> {
    flags: Vec<Option<String>>,
    env: E,
}

impl<E: Fn(&str) -> Option<String>> Settings<E> {
    /// A setting's value and where it came from (`--flag` or `VARIABLE`, for messages). An empty
    /// variable counts as unset, as `docker run -e VAR=` usually means "leave it".
    fn get(&self, flag: &str) -> Option<(String, String)> {
        let slot = FLAGS.iter().position(|(f, _)| *f == flag)?;
        let variable = FLAGS[slot].1;
        match &self.flags[slot] {
            Some(value) => Some((format!("--{flag}"), value.clone())),
            None => (self.env)(variable)
                .filter(|v| !v.is_empty())
                .map(|v| (variable.to_string(), v)),
        }
    }

    /// A setting a security mode can't do without; an empty value counts as missing.
    fn require(&self, flag: &str, mode: &str) -> Result<(String, String), String> {
        match self.get(flag) {
            Some((from, value)) if !value.is_empty() => Ok((from, value)),
            _ => {
                let variable = FLAGS
                    .iter()
                    .find(|(f, _)| *f == flag)
                    .map_or("", |(_, v)| v);
                Err(format!("--security {mode} needs --{flag} (or {variable})"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        match parse(args.iter().map(|a| a.to_string()), lookup)? {
            Command::Run(config) => Ok(config),
            Command::Help => panic!("help"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> String {
        run(args, env).unwrap_err()
    }

    #[test]
    fn defaults() {
        let config = run(&[], &[]).unwrap();
        assert_eq!(
            config,
            Config {
                listen: "127.0.0.1:8080".into(),
                title: "device".into(),
                things: 1,
                security: Security::NoSec,
                fault: Fault::None,
            }
        );
    }

    #[test]
    fn flags_both_spellings() {
        let config = run(
            &[
                "--listen",
                "127.0.0.1:0",
                "--title=cam",
                "--things",
                "1000",
                "--fault=slow:450",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0");
        assert_eq!(config.title, "cam");
        assert_eq!(config.things, 1000);
        assert_eq!(config.fault, Fault::Slow(450));
    }

    #[test]
    fn environment_fills_in_and_flags_win() {
        let env = [
            ("MAMORI_DEVICE_FAULT", "wrong-type"),
            ("MAMORI_DEVICE_TITLE", "from-env"),
            ("MAMORI_DEVICE_THINGS", ""),
        ];
        let config = run(&["--title", "from-flag"], &env).unwrap();
        assert_eq!(config.fault, Fault::WrongType);
        assert_eq!(config.title, "from-flag");
        assert_eq!(config.things, 1, "an empty variable is unset");
    }

    #[test]
    fn security_modes() {
        let basic = run(
            &["--security", "basic", "--user", "u", "--password", "p"],
            &[],
        )
        .unwrap();
        assert_eq!(
            basic.security,
            Security::Basic {
                user: "u".into(),
                password: "p".into()
            }
        );
        let env = [
            ("MAMORI_DEVICE_SECURITY", "bearer"),
            ("MAMORI_DEVICE_TOKEN", "t"),
        ];
        let bearer = run(&[], &env).unwrap();
        assert_eq!(bearer.security, Security::Bearer { token: "t".into() });
        assert!(error(&["--security", "basic", "--user", "u"], &[]).contains("--password"));
        assert!(error(&["--security", "bearer"], &[]).contains("MAMORI_DEVICE_TOKEN"));
        assert!(error(&["--security", "bearer", "--token", "a b"], &[]).contains("--token"));
        let with_colon = ["--security", "basic", "--user", "a:b", "--password", "p"];
        assert!(error(&with_colon, &[]).contains("--user"));
    }

    #[test]
    fn bad_input_names_the_flag_or_variable() {
        // (arguments, environment, the flag or variable the message must name)
        type Case = (
            &'static [&'static str],
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (&["--things", "0"], &[], "--things"),
            (&["--things", "abc"], &[], "--things"),
            (&["--things", "100001"], &[], "--things"),
            (
                &[],
                &[("MAMORI_DEVICE_THINGS", "-1")],
                "MAMORI_DEVICE_THINGS",
            ),
            (&["--fault", "explode"], &[], "--fault"),
            (
                &[],
                &[("MAMORI_DEVICE_FAULT", "slow:x")],
                "MAMORI_DEVICE_FAULT",
            ),
            (&["--security", "oauth2"], &[], "--security"),
            (&["--listen", "nowhere"], &[], "--listen"),
            (&["--title", "has space"], &[], "--title"),
            (&["--title", ""], &[], "--title"),
            (&["--verbose"], &[], "--verbose"),
            (&["--things"], &[], "--things"),
            (&["--title", "--things", "3"], &[], "--title"),
            (&["serve"], &[], "serve"),
        ];
        for (args, env, named) in cases {
            let err = error(args, env);
            assert!(err.contains(named), "{args:?} {env:?}: {err}");
        }
    }

    #[test]
    fn help() {
        let parsed = parse(["--help".to_string()], |_| None);
        assert_eq!(parsed, Ok(Command::Help));
        assert_eq!(parse(["-h".to_string()], |_| None), Ok(Command::Help));
    }
}

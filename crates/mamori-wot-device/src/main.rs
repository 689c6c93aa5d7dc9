//! `mamori-wot-device`: a W3C Web of Things device simulator for mamori's integration tests and
//! benchmarks. It serves its own Thing Description (TD 1.1) and its properties over HTTP/1.1
//! (std only, one thread per connection) and can be switched into faults at start or at run
//! time through `/control/fault`. Run with `--help` for the flags, endpoints and faults.

mod args;
mod auth;
mod device;
mod fault;
mod http;
mod sensors;
mod server;
mod signals;
mod td;

use std::io::Write;
use std::net::TcpListener;
use std::process;
use std::sync::Arc;
use std::time::Duration;

use args::Command;
use device::Device;
use fault::Fault;

fn main() {
    // Lossy: a non-UTF-8 argument then fails validation with a message instead of a panic.
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let config = match args::parse(args, |name| std::env::var(name).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
            return;
        }
        Err(message) => {
            eprintln!("mamori-wot-device: {message}\n(see mamori-wot-device --help)");
            process::exit(2);
        }
    };
    signals::install();
    let listener = match TcpListener::bind(&config.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mamori-wot-device: can't listen on {}: {e}", config.listen);
            process::exit(1);
        }
    };
    // The bound address, so `--listen 127.0.0.1:0` reports (and links to) its real port.
    let local = match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => config.listen.clone(),
    };
    eprintln!(
        "mamori-wot-device: listening on http://{local} \
         ({} thing{} titled {}, security {}, fault {})",
        config.things,
        if config.things == 1 { "" } else { "s" },
        config.title,
        config.security.name(),
        config.fault
    );
    if config.fault == Fault::Crash {
        // Serve for a second first, so a restarting container is seen up, then down.
        fault::crash_after(Duration::from_secs(1));
    }
    server::serve(listener, Arc::new(Device::new(&config, local)))
}

//! The TCP side: accept connections and serve each on its own small-stack thread, keep-alive,
//! until the peer closes, goes idle or sends something unservable.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::device::{Device, Outcome};
use crate::http::{self, HttpError, Response};

/// Stack of a connection thread: the handlers are shallow, and 4,096 connections of 128 KiB
/// stay within 512 MiB of (mostly untouched) address space.
pub const STACK_SIZE: usize = 128 * 1024;
/// Connections served at once; beyond this a new one gets a 503 and is closed.
pub const MAX_CONNECTIONS: usize = 4096;
/// A keep-alive connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A peer that reads nothing for this long (e.g. stuck on the `huge` body) is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections forever.
pub fn serve(listener: TcpListener, device: Arc<Device>) -> ! {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("mamori-wot-device: accept: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            refuse(stream);
            continue;
        }
        let slot = Slot::take(&open);
        let device = device.clone();
        let spawned = thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _slot = slot;
                connection(stream, &device);
            });
        // On failure the closure, slot and stream included, is dropped: the peer sees a close.
        if let Err(e) = spawned {
            eprintln!("mamori-wot-device: no thread for a connection: {e}");
        }
    }
}

/// One open connection, counted until dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::Relaxed);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves requests on one connection until it closes.
fn connection(stream: TcpStream, device: &Device) {
    // Responses are written whole; Nagle would only hold them back for the peer's delayed ACK.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request = match http::read_head(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(HttpError::Closed) => return,
            Err(HttpError::Reject(status, reason)) => {
                let _ = http::write_response(&mut writer, &Response::error(status, reason), false);
                return linger(&writer);
            }
        };
        if request.expects_continue() && writer.write_all(http::CONTINUE).is_err() {
            return;
        }
        if http::read_body(&mut reader, &mut request).is_err() {
            return;
        }
        let keep_alive = request.keep_alive();
        match device.handle(&request) {
            Outcome::Reply(response) => {
                let keep_alive = keep_alive && !response.close;
                let written = http::write_response(&mut writer, &response, keep_alive);
                if written.is_err() || !keep_alive {
                    return;
                }
            }
            Outcome::Hang => return hang(&writer),
        }
    }
}

/// The `hang` fault: hold the connection and send nothing until the peer gives up. Whatever it
/// sends meanwhile is read and dropped, so its writes never block.
fn hang(mut stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Closes after a final error response without losing it: closing a socket with unread input
/// sends a reset, which can destroy the response before the peer reads it.
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 1 << 20 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Turns away a connection beyond [`MAX_CONNECTIONS`] without blocking the accept loop for long.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let response = Response::error(503, "too many connections");
    let _ = http::write_response(&mut stream, &response, false);
}

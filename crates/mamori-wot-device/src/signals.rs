//! SIGTERM and SIGINT end the process at once. As PID 1 in a container a process gets no
//! default action for them, so without a handler `docker stop` would wait out its timeout and
//! then SIGKILL. std already links the C library; declaring the three calls needed here spares
//! a dependency on the libc crate.

/// Installs the handlers (a no-op off Unix).
pub fn install() {
    #[cfg(unix)]
    unix::install();
}

#[cfg(unix)]
mod unix {
    use std::os::raw::c_int;

    const SIGINT: c_int = 2;
    const SIGTERM: c_int = 15;

    extern "C" {
        // sighandler_t is a pointer; only success matters here, so usize will do.
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
        fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
        fn _exit(status: c_int) -> !;
    }

    extern "C" fn on_signal(_: c_int) {
        const MESSAGE: &[u8] = b"mamori-wot-device: stopped by signal\n";
        // Only async-signal-safe calls: no allocation, no locks, no std::process::exit.
        unsafe {
            write(2, MESSAGE.as_ptr(), MESSAGE.len());
            _exit(0);
        }
    }

    pub fn install() {
        unsafe {
            signal(SIGTERM, on_signal);
            signal(SIGINT, on_signal);
        }
    }
}

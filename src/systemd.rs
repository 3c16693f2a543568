//! The systemd notify protocol (`Type=notify`), written out by hand: one
//! datagram per state change to the socket named in `NOTIFY_SOCKET`.
//! Without that variable (not started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `READY=1`) to systemd, if systemd is listening.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket.to_string_lossy(), state) {
        log::warn!("could not tell systemd {state}: {e}");
    }
}

fn send(socket: &str, state: &str) -> std::io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    match socket.strip_prefix('@') {
        // An abstract socket (Linux): '@' stands for the leading NUL byte.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            datagram.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            datagram.send_to(state.as_bytes(), socket)?;
        }
    }
    Ok(())
}

/// How often systemd wants `WATCHDOG=1`, if it does (and if it asks this process).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half the interval systemd asked for, as long as
/// `healthy` says so; a store that can no longer make writes durable stops
/// the pings, and systemd restarts the service.
pub fn start_watchdog(healthy: impl Fn() -> bool + Send + 'static) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    log::info!("systemd watchdog every {interval:?}");
    std::thread::spawn(move || loop {
        if healthy() {
            notify("WATCHDOG=1");
        }
        std::thread::sleep(interval / 2);
    });
}

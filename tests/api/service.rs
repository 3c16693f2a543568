//! Running as a service: signals, the systemd notify protocol, the watchdog.

use std::ffi::OsString;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{command, newest_snapshot_lsn, role, s, Client, Server};

/// A fake systemd: the socket the server's notifications arrive at.
struct FakeSystemd {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl FakeSystemd {
    fn new(dir: &std::path::Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        FakeSystemd { socket, path }
    }

    /// The next message, waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    }
}

struct Service {
    dir: tempfile::TempDir,
    systemd: FakeSystemd,
}

impl Service {
    fn new() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let systemd = FakeSystemd::new(dir.path());
        Service { dir, systemd }
    }

    fn start(&self, config: &str, extra_env: &[(&str, OsString)]) -> Server {
        let config_file = self.dir.path().join("config.toml");
        std::fs::write(&config_file, config).unwrap();
        let args: Vec<OsString> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            self.dir.path().join("data").into(),
            "--config".into(),
            config_file.into(),
        ];
        let mut env = vec![("NOTIFY_SOCKET", self.systemd.path.clone().into_os_string())];
        env.extend(extra_env.iter().cloned());
        Server::start(command(&args, &env), &self.dir.path().join("server.log")).unwrap()
    }
}

/// Opens a request and sends only half of its body, so it stays in flight.
fn request_in_flight(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let body =
        br#"{"name":"slow","roleArn":"arn:aws:iam::123456789012:role/r","resourcesVpcConfig":{}}"#;
    write!(
        stream,
        "POST /clusters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();
    stream
}

#[test]
fn systemd_hears_ready_once_the_port_is_bound_and_stopping_on_sigterm_then_the_server_exits_0() {
    let service = Service::new();
    let mut server = service.start("", &[]);
    assert_eq!(
        service.systemd.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );
    // READY means serving: a request works right away.
    let app = Client::new(server.addr);
    app.create_cluster("c1").cluster();
    let a = app
        .create_association(
            "c1",
            &json!({"namespace": "ns", "serviceAccount": "sa", "roleArn": role("r")}),
        )
        .association();
    let data = service.dir.path().join("data");
    let snapshot_at_start = newest_snapshot_lsn(&data);

    server.signal("TERM");
    assert_eq!(
        service.systemd.next(Duration::from_secs(5)).as_deref(),
        Some("STOPPING=1")
    );
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "{status}");
    // A clean stop leaves sled a recovery snapshot that covers the writes
    // made since the start, so the next start need not replay them.
    let snapshot = newest_snapshot_lsn(&data);
    assert!(
        snapshot > snapshot_at_start,
        "the newest recovery snapshot is still the one from the start (log position {snapshot})"
    );

    let server = service.start("", &[]);
    let app = Client::new(server.addr);
    assert_eq!(
        s(
            &app.describe_association("c1", s(&a, "associationId"))
                .association(),
            "roleArn"
        ),
        role("r")
    );
}

#[test]
fn sigint_stops_as_gracefully_as_sigterm() {
    let service = Service::new();
    let mut server = service.start("", &[]);
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGINT");
    assert!(status.success(), "{status}");
}

#[test]
fn a_request_in_flight_holds_the_stop_only_until_the_shutdown_timeout() {
    let service = Service::new();
    let mut server = service.start("[server]\nshutdown_timeout_seconds = 1\n", &[]);
    let _in_flight = request_in_flight(&server);
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits within its shutdown timeout");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the stop did not wait for the request in flight"
    );
}

#[test]
fn a_second_signal_stops_the_server_at_once() {
    let service = Service::new();
    let mut server = service.start("[server]\nshutdown_timeout_seconds = 60\n", &[]);
    let _in_flight = request_in_flight(&server);
    std::thread::sleep(Duration::from_millis(100));
    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "the first signal must wait for the request in flight"
    );
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the second signal stops the server at once");
    assert!(!status.success(), "{status}");
}

#[test]
fn the_watchdog_is_pinged_when_systemd_asks_for_it() {
    let service = Service::new();
    let mut server = service.start("", &[("WATCHDOG_USEC", "200000".into())]);
    assert_eq!(
        service.systemd.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );
    let pings = (0..3)
        .filter_map(|_| service.systemd.next(Duration::from_secs(2)))
        .collect::<Vec<_>>();
    assert_eq!(pings, ["WATCHDOG=1"; 3]);

    // The watchdog's thread does not keep the store open: a clean stop
    // still reopens it to leave sled a fresh recovery snapshot.
    Client::new(server.addr).create_cluster("c1").cluster();
    let data = service.dir.path().join("data");
    let snapshot_at_start = newest_snapshot_lsn(&data);
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        newest_snapshot_lsn(&data) > snapshot_at_start,
        "no recovery snapshot was written at the stop"
    );
}

#[test]
fn the_watchdog_stays_quiet_when_systemd_asked_another_process() {
    let service = Service::new();
    let _server = service.start(
        "",
        &[
            ("WATCHDOG_USEC", "200000".into()),
            ("WATCHDOG_PID", "1".into()),
        ],
    );
    assert_eq!(
        service.systemd.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );
    assert_eq!(service.systemd.next(Duration::from_millis(600)), None);
}

#[test]
fn the_watchdog_pings_stop_once_the_store_failed() {
    let service = Service::new();
    let server = service.start("", &[("WATCHDOG_USEC", "200000".into())]);
    assert_eq!(
        service.systemd.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );
    assert_eq!(
        service.systemd.next(Duration::from_secs(2)).as_deref(),
        Some("WATCHDOG=1")
    );
    let base = format!("http://{}", server.addr);
    ureq::put(&format!("{base}/admin/v1/failpoints/store::flush"))
        .send_string("return")
        .unwrap();
    let refused = ureq::post(&format!("{base}/clusters")).send_json(json!({
        "name": "c1", "roleArn": role("r"), "resourcesVpcConfig": {},
    }));
    assert!(
        matches!(refused, Err(ureq::Error::Status(500, _))),
        "{refused:?}"
    );
    // A ping on its way as the store failed may still come (on a busy
    // machine, late); a healthy server would go on pinging every 100 ms.
    let late = (0..5)
        .map_while(|_| service.systemd.next(Duration::from_millis(300)))
        .count();
    assert!(late < 5, "the pings went on after the failure");
    assert_eq!(service.systemd.next(Duration::from_millis(600)), None);
}

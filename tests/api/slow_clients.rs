//! Slow and greedy clients: a body that stalls is cut off at
//! `server.body_read_timeout_seconds`, and `server.max_connections` bounds
//! the connections open at once without starving the clients already in.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::helpers::TestApp;

const BODY: &[u8] =
    br#"{"name":"slow","roleArn":"arn:aws:iam::123456789012:role/r","resourcesVpcConfig":{}}"#;

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("the test server's address")
}

/// Sends a CreateCluster's head and the first bytes of its body, then nothing.
fn stalled(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /clusters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    )
    .unwrap();
    stream.write_all(&BODY[..10]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Whether the server has neither answered nor closed `stream` yet.
fn still_waiting(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let waiting = matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    waiting
}

/// One keep-alive request on `stream`; answers the status line and body.
fn exchange(stream: &mut TcpStream, path: &str) -> std::io::Result<(String, String)> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    stream.flush()?;
    read_answer(stream)
}

fn read_answer(stream: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn stalled_bodies_are_cut_off_at_the_deadline_while_a_normal_client_is_served() {
    const STALLED: usize = 300;
    let deadline = Duration::from_secs(2);
    let app = TestApp::spawn_with_config("[server]\nbody_read_timeout_seconds = 2\n");
    app.create_cluster("c1").cluster();
    let addr = addr(&app);

    let first_stalled = Instant::now();
    let mut streams: Vec<TcpStream> = (0..STALLED).map(|_| stalled(addr)).collect();

    // A normal client is served at once beside them, not after the deadline.
    let started = Instant::now();
    app.describe_cluster("c1").cluster();
    let took = started.elapsed();
    assert!(
        took < deadline / 2,
        "a normal request beside {STALLED} stalled ones took {took:?}"
    );
    assert!(
        first_stalled.elapsed() < deadline,
        "opening the stalled connections took longer than the deadline; the check below would \
         prove nothing"
    );
    // The stalled ones were all still held while it was served.
    let held = streams.iter().filter(|s| still_waiting(s)).count();
    assert_eq!(
        held, STALLED,
        "stalled connections answered before the deadline"
    );

    // Each gets 408 and is closed, at the deadline and not before.
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(deadline + Duration::from_secs(20)))
            .unwrap();
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .expect("the server closes a stalled connection");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("RequestTimeoutException")
                && answer.contains("server.body_read_timeout_seconds"),
            "{answer}"
        );
    }
    let closed_after = first_stalled.elapsed();
    assert!(
        closed_after >= deadline,
        "stalled connections closed after {closed_after:?}, before the deadline"
    );
    // Nothing of theirs was written, and the server goes on serving.
    app.describe_cluster("slow")
        .error(404, "ResourceNotFoundException");
    app.describe_cluster("c1").cluster();
}

#[test]
fn past_the_connection_bound_new_clients_wait_while_connected_ones_are_served() {
    // Two connections in total, whatever the number of CPUs.
    let app = TestApp::spawn_with_config("[server]\nmax_connections = 2\n");
    let addr = addr(&app);
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    for stream in [&mut first, &mut second] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (status, body) = exchange(stream, "/healthz").unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    }

    // A third is not taken in while both are open.
    let mut third = TcpStream::connect(addr).unwrap();
    write!(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    match third.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a connection past the bound was served: {other:?}"),
    }

    // The connected clients are still served meanwhile.
    for stream in [&mut first, &mut second] {
        let (status, _) = exchange(stream, "/healthz").unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }

    // Once one leaves, the waiting one is served.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (status, body) = read_answer(&mut third).expect("the waiting client's answer");
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    assert_eq!(body, "ok\n");
}

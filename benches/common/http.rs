//! A minimal HTTP/1.1 keep-alive client for the benchmarks' hot loops.
//!
//! The load generator shares the server's cores, so every microsecond it
//! spends is one the server does not get. A general client (ureq) parses
//! URLs, builds header maps and allocates per request; this one writes the
//! request bytes, reads the answer into a reused buffer and looks only at the
//! status line, `Content-Length` and `X-Amzn-ErrorType`. It speaks only to
//! this server: bodies must come with a `Content-Length` (no chunked
//! encoding), and the connection stays open between requests.
//!
//! It is async, so that many connections share a few threads
//! (`common::spawn_clients`), as wrk's do: with one blocking thread per client,
//! every answer woke a thread of its own, and the server paid for those
//! wake-ups (about a third more server CPU per durable update at 64 clients
//! than under wrk).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest one read from the server may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Signs a request for a server with authentication on: given the method,
/// the path (with its query) and the body, the header lines to add (each
/// ending in CRLF), signed for `Host: 127.0.0.1`.
pub type Sign = Arc<dyn Fn(&str, &str, &str) -> String + Send + Sync>;

pub struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
    sign: Option<Sign>,
}

impl Connection {
    /// A connection whose requests `sign` signs (none when `None`).
    pub async fn open(addr: SocketAddr, sign: Option<Sign>) -> std::io::Result<Connection> {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            request: Vec::with_capacity(512),
            buffer: Vec::with_capacity(64 * 1024),
            sign,
        })
    }

    /// Sends one request; `Ok(body)` on a 2xx answer, otherwise `Err` with
    /// the status, the error type and the body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<&str, String> {
        self.request.clear();
        let body = body.unwrap_or("");
        let signature = self.sign.as_ref().map(|sign| sign(method, path, body));
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            signature.as_deref().unwrap_or("")
        )
        .expect("writing into a Vec cannot fail");
        self.stream
            .write_all(&self.request)
            .await
            .map_err(|e| format!("transport: sending: {e}"))?;
        let (status, error_type, start, end) = self.read_answer().await?;
        let text = std::str::from_utf8(&self.buffer[start..end])
            .map_err(|_| "the body is not UTF-8".to_owned())?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(format!("{status} {error_type} {text}"))
        }
    }

    /// Reads one answer into `buffer`: (status, error type, body range).
    async fn read_answer(&mut self) -> Result<(u16, String, usize, usize), String> {
        self.buffer.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(head_end) = find(&self.buffer, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..head_end])
                    .map_err(|_| "the header is not UTF-8".to_owned())?;
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("no status in {head:?}"))?;
                let mut length = None;
                let mut error_type = String::new();
                for line in head.split("\r\n").skip(1) {
                    let Some((name, value)) = line.split_once(':') else {
                        continue;
                    };
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse::<usize>().ok();
                    } else if name.eq_ignore_ascii_case("x-amzn-errortype") {
                        error_type = value.trim().to_owned();
                    }
                }
                let length =
                    length.ok_or_else(|| format!("no Content-Length in the answer {head:?}"))?;
                let start = head_end + 4;
                while self.buffer.len() < start + length {
                    self.fill(&mut chunk).await?;
                }
                return Ok((status, error_type, start, start + length));
            }
            self.fill(&mut chunk).await?;
        }
    }

    async fn fill(&mut self, chunk: &mut [u8]) -> Result<(), String> {
        match tokio::time::timeout(READ_TIMEOUT, self.stream.read(chunk)).await {
            Err(_) => Err(format!("transport: no answer in {READ_TIMEOUT:?}")),
            Ok(Ok(0)) => Err("transport: the server closed the connection".into()),
            Ok(Ok(n)) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("transport: reading: {e}")),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

//! HTTP: one answer whatever its status, the rules every answer keeps,
//! and a client with the generic request helpers.
//!
//! Every answer goes through [`check_answer`], which holds the rules every
//! response must keep whatever the request: never a 5xx, always an
//! `x-amzn-requestid`, and errors always in the restJson1 error form.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub error_type: Option<String>,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub text: String,
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
}

impl Answer {
    pub fn from_response(
        method: &str,
        path: &str,
        response: ureq::Response,
    ) -> Result<Self, String> {
        let header = |name: &str| response.header(name).map(str::to_owned);
        let status = response.status();
        let error_type = header("x-amzn-errortype");
        let request_id = header("x-amzn-requestid");
        let content_type = header("content-type");
        let allow = header("allow");
        let text = response
            .into_string()
            .map_err(|e| format!("{method} {path}: cannot read the body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            error_type,
            request_id,
            content_type,
            allow,
            text,
            body,
        })
    }

    /// The body of a 200 answer (the test fails on anything else).
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(
            self.status, 200,
            "{} {} expected 200, got {} {:?}: {}",
            self.method, self.path, self.status, self.error_type, self.text
        );
        &self.body
    }

    /// `association` of a 200 answer.
    #[track_caller]
    pub fn association(&self) -> Value {
        let association = self.ok()["association"].clone();
        assert!(association.is_object(), "no association in {}", self.text);
        association
    }

    /// `cluster` of a 200 answer.
    #[track_caller]
    pub fn cluster(&self) -> Value {
        let cluster = self.ok()["cluster"].clone();
        assert!(cluster.is_object(), "no cluster in {}", self.text);
        cluster
    }

    /// The cluster without its `identity` (the token issuer URL), for
    /// comparing answers of two servers or of one server before and after
    /// a restart: the URL names the address the server listens on, which
    /// port 0 picks anew at every start.
    pub fn cluster_without_issuer(&self) -> Value {
        let mut cluster = self.cluster();
        cluster
            .as_object_mut()
            .expect("a cluster is an object")
            .remove("identity");
        cluster
    }

    /// The message of an error answer with this status and type.
    #[track_caller]
    pub fn error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(
            (self.status, self.error_type.as_deref()),
            (status, Some(error_type)),
            "{} {}: unexpected answer: {}",
            self.method,
            self.path,
            self.text
        );
        self.body["message"]
            .as_str()
            .expect("checked by check_answer")
            .to_owned()
    }

    /// The `clusterName` member of an error body.
    pub fn error_cluster(&self) -> Option<&str> {
        self.body["clusterName"].as_str()
    }
}

/// What the message of every injected fault says (`docs/faults.md`).
pub const INJECTED: &str = "injected by fault rule";

/// The rules every answer keeps: never a 5xx (unless a fault rule injected
/// it, and says so), always a request ID, JSON bodies, and errors in the
/// restJson1 form (type header, JSON `message`).
#[track_caller]
pub fn check_answer(answer: &Answer) {
    let what = format!("{} {}", answer.method, answer.path);
    let injected = answer.body["message"]
        .as_str()
        .is_some_and(|m| m.contains(INJECTED));
    assert!(
        answer.status < 500 || injected,
        "{what} answered {}: {}",
        answer.status,
        answer.text
    );
    assert!(
        answer
            .request_id
            .as_deref()
            .is_some_and(|id| !id.is_empty()),
        "{what}: no x-amzn-requestid header"
    );
    if !answer.text.is_empty() {
        assert!(
            answer
                .content_type
                .as_deref()
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{what}: content-type {:?}",
            answer.content_type
        );
        assert!(
            answer.body.is_object(),
            "{what}: the body is not a JSON object: {}",
            answer.text
        );
    }
    if answer.status >= 400 {
        assert!(
            answer.error_type.as_deref().is_some_and(|t| !t.is_empty()),
            "{what} answered {} without X-Amzn-ErrorType: {}",
            answer.status,
            answer.text
        );
        assert!(
            answer.body["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what} answered {} without a message: {}",
            answer.status,
            answer.text
        );
    } else {
        assert_eq!(
            answer.error_type, None,
            "{what}: a success with an error type"
        );
    }
}

/// The answer ureq got, whatever its status, checked by [`check_answer`];
/// `Err` only when no HTTP answer came.
#[track_caller]
fn answered(
    method: &str,
    path: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> Result<Answer, String> {
    let answer = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            Answer::from_response(method, path, response)?
        }
        Err(ureq::Error::Transport(e)) => return Err(format!("{method} {path}: {e}")),
    };
    check_answer(&answer);
    Ok(answer)
}

/// An HTTP client for one server address; cheap to clone into threads.
#[derive(Clone)]
pub struct Client {
    pub(super) agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback(), "tests talk to 127.0.0.1 only");
        Client {
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
            base: format!("http://{addr}"),
        }
    }

    /// Any request; `Err` only when no HTTP answer came (e.g. the server died).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(content_type) = content_type {
            request = request.set("Content-Type", content_type);
        }
        let result = match body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        answered(method, path, result)
    }

    /// A request whose body goes with chunked transfer encoding (no Content-Length).
    #[track_caller]
    pub fn request_chunked(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        let result = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Content-Type", content_type)
            .send(body);
        answered(method, path, result).unwrap_or_else(|e| panic!("no answer: {e}"))
    }

    /// Any request; the test fails when no HTTP answer came.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        self.try_request(method, path, content_type, body)
            .unwrap_or_else(|e| panic!("no answer: {e}"))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None, None)
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Answer {
        self.request("DELETE", path, None, None)
    }

    #[track_caller]
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.request(method, path, Some("application/json"), Some(&bytes))
    }
}

/// Percent-encodes a path label or query value as the SDKs do (Smithy
/// httpLabel): every byte outside `A-Z a-z 0-9 - . _ ~` becomes `%XX`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string (`?k=v&k2=v2`, each part encoded), or "" with no pairs.
pub fn query(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

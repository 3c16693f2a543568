//! The local agent (`pod-identity-store agent`): what the EKS Pod Identity
//! Agent is on a node. It serves the container credentials endpoint the AWS
//! SDKs read (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): `GET /v1/credentials`
//! with the pod's service-account token in the `Authorization` header
//! (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), and answers it from the
//! server's `AssumeRoleForPodIdentity` for its cluster.
//!
//! Answers are kept per token until shortly before they expire, so a pod's
//! SDK refreshing its credentials reaches the server only when they are
//! about to run out. The calls to the server are signed (SigV4, signing name
//! `eks-auth`) with the agent's own key when it has one.
//!
//! # Limits
//! - Two requests with the same uncached token at the same moment both call
//!   the server; the later answer is the one kept.
//! - Cached answers live in memory only: a restarted agent asks again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use serde::{Deserialize, Serialize};

use crate::domain::{ClusterName, Timestamp};
use crate::eksauth::sts::{error_chain, https_client};

/// The path the SDKs' container credential provider is pointed at.
pub const CREDENTIALS_PATH: &str = "/v1/credentials";
/// The signing name of the EKS Auth API.
pub const SIGNING_NAME: &str = "eks-auth";
/// Credentials are fetched again this long before they expire (or at half
/// their lifetime when that is sooner), so a pod never gets ones about to
/// lapse; the SDKs themselves refresh a few minutes before expiry.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// How long one call to the server may take.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the agent is started with.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub listen: SocketAddr,
    /// The base URL of the server (`http://HOST:PORT`).
    pub server: String,
    pub cluster: String,
    /// The region the agent signs for: the server's `aws.region`.
    pub region: String,
    /// The key given on the command line; without it, the standard AWS
    /// chain (environment, profile, …) is asked.
    pub key: Option<Credentials>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--server {0:?} is not an http:// or https:// URL such as http://127.0.0.1:8080")]
    ServerUrl(String),
    #[error("--cluster {value:?}: {reason}")]
    Cluster { value: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound agent, ready to serve.
pub struct Agent {
    server: actix_web::dev::Server,
    addr: SocketAddr,
}

impl Agent {
    /// Checks the settings, finds the signing key and binds `listen`
    /// (port 0 picks a free port).
    pub async fn build(settings: AgentSettings) -> Result<Agent, AgentError> {
        let base = settings.server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://"))
            || base.split("://").nth(1).is_none_or(str::is_empty)
        {
            return Err(AgentError::ServerUrl(settings.server));
        }
        ClusterName::parse("cluster", &settings.cluster).map_err(|e| AgentError::Cluster {
            value: settings.cluster.clone(),
            reason: e.to_string(),
        })?;
        let signer = Signer::find(settings.key, &settings.region).await;
        let state = web::Data::new(State {
            url: format!(
                "{base}/clusters/{}/assume-role-for-pod-identity",
                settings.cluster
            ),
            region: settings.region,
            signer,
            http: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout(SERVER_TIMEOUT)
                .build(),
            cache: Mutex::new(HashMap::new()),
        });
        let listener =
            std::net::TcpListener::bind(settings.listen).map_err(|source| AgentError::Bind {
                addr: settings.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Bind {
            addr: settings.listen,
            source,
        })?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route(CREDENTIALS_PATH, web::get().to(credentials))
                .default_service(web::to(not_found))
        })
        // A node's pods refresh rarely: two workers are plenty.
        .workers(2)
        .listen(listener)
        .map_err(|source| AgentError::Bind {
            addr: settings.listen,
            source,
        })?
        .run();
        log::info!("agent for cluster {} of {base} on {addr}", settings.cluster);
        Ok(Agent { server, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

struct State {
    /// The server's AssumeRoleForPodIdentity URL for the agent's cluster.
    url: String,
    region: String,
    signer: Signer,
    http: ureq::Agent,
    /// Answers by token.
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone)]
struct Cached {
    answer: ContainerCredentials,
    /// When the answer is no longer handed out.
    stale_at: Timestamp,
}

/// Where the agent's signing key comes from.
enum Signer {
    Key(Credentials),
    /// The standard chain, and the credentials it gave last, reused until
    /// they are about to expire (instance or container credentials would
    /// otherwise cost a metadata call per call to the server).
    Chain {
        chain: SharedCredentialsProvider,
        last: Mutex<Option<Credentials>>,
    },
    Unsigned,
}

impl Signer {
    /// The key given, else the standard chain if it has credentials now,
    /// else unsigned calls (a server that checks signatures refuses them,
    /// and the agent passes its refusal on).
    async fn find(key: Option<Credentials>, region: &str) -> Signer {
        if let Some(key) = key {
            log::info!("signing calls to the server with the given key");
            return Signer::Key(key);
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .http_client(https_client())
            .load()
            .await;
        let Some(chain) = config.credentials_provider() else {
            return Signer::Unsigned;
        };
        match chain.provide_credentials().await {
            Ok(found) => {
                log::info!("signing calls to the server with the standard AWS chain's credentials");
                Signer::Chain {
                    chain,
                    last: Mutex::new(Some(found)),
                }
            }
            Err(e) => {
                log::warn!(
                    "no AWS credentials found ({}): calls to the server go unsigned",
                    error_chain(&e)
                );
                Signer::Unsigned
            }
        }
    }

    /// The key for one call, or none for an unsigned call.
    async fn key(&self) -> Result<Option<Credentials>, String> {
        match self {
            Signer::Key(key) => Ok(Some(key.clone())),
            Signer::Chain { chain, last } => {
                let fresh_until = SystemTime::now() + REFRESH_BEFORE_EXPIRY;
                let kept = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(key) = kept.filter(|k| k.expiry().is_none_or(|at| at > fresh_until)) {
                    return Ok(Some(key));
                }
                let key = chain.provide_credentials().await.map_err(|e| {
                    format!(
                        "the agent's AWS credentials could not be resolved: {}",
                        error_chain(&e)
                    )
                })?;
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
                Ok(Some(key))
            }
            Signer::Unsigned => Ok(None),
        }
    }
}

/// The container credentials answer, as the SDKs read it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
    account_id: String,
    /// ISO 8601, UTC.
    expiration: String,
    #[serde(skip)]
    expires_at: Timestamp,
    #[serde(skip)]
    role_arn: String,
}

/// The part of the server's AssumeRoleForPodIdentity answer the agent uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssumeRoleAnswer {
    assumed_role_user: AssumedRoleUser,
    credentials: WireCredentials,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssumedRoleUser {
    arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// Epoch seconds.
    expiration: f64,
}

/// A failed request: its status and the error body the agent answers.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    code: String,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({
            "code": self.code,
            "message": self.message,
        }))
    }
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    Failure::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "{} {} is not served here; the container credentials are at GET {CREDENTIALS_PATH}",
            request.method(),
            request.path()
        ),
    )
    .response()
}

async fn credentials(request: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::to_str)
        .map(|t| t.map(str::trim));
    let token = match token {
        Some(Ok(token)) if !token.is_empty() => token.to_owned(),
        _ => {
            return Failure::new(
                StatusCode::BAD_REQUEST,
                "MissingToken",
                "no service-account token: send the pod's projected token as the Authorization \
                 header (the SDKs do so from the file named by AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
            )
            .response()
        }
    };
    let now = Timestamp::now();
    if let Some(cached) = state.cached(&token, now) {
        log::info!("credentials for {} from the cache", cached.role_arn);
        return HttpResponse::Ok().json(cached);
    }
    let key = match state.signer.key().await {
        Ok(key) => key,
        Err(message) => {
            log::error!("{message}");
            return Failure::new(StatusCode::BAD_GATEWAY, "AgentCredentials", message).response();
        }
    };
    let fetching = state.clone();
    let fetched = web::block(move || {
        let answer = fetching.fetch(&token, key.as_ref())?;
        fetching.keep(token, &answer, Timestamp::now());
        Ok::<_, Failure>(answer)
    })
    .await;
    match fetched {
        Ok(Ok(answer)) => {
            log::info!(
                "credentials for {} from the server, expiring at {}",
                answer.role_arn,
                answer.expiration
            );
            HttpResponse::Ok().json(answer)
        }
        Ok(Err(failure)) => {
            log::warn!(
                "the server refused credentials: {} {}: {}",
                failure.status.as_u16(),
                failure.code,
                failure.message
            );
            failure.response()
        }
        Err(e) => {
            log::error!("the call to the server did not finish: {e}");
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the agent failed; see its log",
            )
            .response()
        }
    }
}

impl State {
    fn cached(&self, token: &str, now: Timestamp) -> Option<ContainerCredentials> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(token)
            .filter(|c| now < c.stale_at)
            .map(|c| c.answer.clone())
    }

    /// Keeps `answer` for `token` until it is about to expire, and drops the
    /// answers that are already stale, so the cache holds no more than the
    /// tokens in use.
    fn keep(&self, token: String, answer: &ContainerCredentials, now: Timestamp) {
        let stale_at = stale_at(now, answer.expires_at);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, c| now < c.stale_at);
        if now < stale_at {
            cache.insert(
                token,
                Cached {
                    answer: answer.clone(),
                    stale_at,
                },
            );
        }
    }

    /// One AssumeRoleForPodIdentity call (blocking).
    fn fetch(
        &self,
        token: &str,
        key: Option<&Credentials>,
    ) -> Result<ContainerCredentials, Failure> {
        let body = serde_json::json!({ "token": token }).to_string();
        let mut call = self
            .http
            .post(&self.url)
            .set("content-type", "application/json");
        if let Some(key) = key {
            for (name, value) in sign(&self.url, &body, key, &self.region)? {
                call = call.set(&name, &value);
            }
        }
        let response = match call.send_string(&body) {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => return Err(passed_on(status, response)),
            Err(ureq::Error::Transport(e)) => {
                return Err(Failure::new(
                    StatusCode::BAD_GATEWAY,
                    "ServerUnreachable",
                    format!(
                        "the eks-auth server at {} could not be reached: {e}",
                        self.url
                    ),
                ))
            }
        };
        let answer: AssumeRoleAnswer = response.into_json().map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "BadServerAnswer",
                format!(
                    "the eks-auth server at {} answered an unreadable body: {e}",
                    self.url
                ),
            )
        })?;
        container_credentials(answer)
            .map_err(|message| Failure::new(StatusCode::BAD_GATEWAY, "BadServerAnswer", message))
    }
}

/// When an answer expiring at `expires_at`, fetched at `now`, stops being
/// handed out: [`REFRESH_BEFORE_EXPIRY`] before it expires, or halfway
/// through its lifetime when that is sooner.
fn stale_at(now: Timestamp, expires_at: Timestamp) -> Timestamp {
    let lifetime = expires_at
        .as_millis()
        .saturating_sub(now.as_millis())
        .max(0);
    let margin = (REFRESH_BEFORE_EXPIRY.as_millis() as i64).min(lifetime / 2);
    Timestamp::from_millis(expires_at.as_millis() - margin)
}

/// The server's error, with its status and message, as the agent's.
fn passed_on(status: u16, response: ureq::Response) -> Failure {
    // restJson1 allows `Type:namespace` in the header; the type is first.
    let code = response
        .header("x-amzn-errortype")
        .and_then(|t| t.split(':').next())
        .unwrap_or("ServerError")
        .to_owned();
    let body: serde_json::Value = response.into_json().unwrap_or_default();
    let message = body
        .get("message")
        .or_else(|| body.get("Message"))
        .and_then(|m| m.as_str())
        .unwrap_or("the eks-auth server gave no message")
        .to_owned();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    Failure {
        status,
        code,
        message,
    }
}

/// SigV4 headers for a POST of `body` to `url`.
fn sign(
    url: &str,
    body: &str,
    key: &Credentials,
    region: &str,
) -> Result<Vec<(String, String)>, Failure> {
    use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SigningSettings};
    let failed = |e: &dyn std::fmt::Display| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SigningFailed",
            format!("the agent could not sign its call to {url}: {e}"),
        )
    };
    let identity = key.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = [("content-type", "application/json")];
    let request = SignableRequest::new(
        "POST",
        url,
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = http_request::sign(request, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

fn container_credentials(answer: AssumeRoleAnswer) -> Result<ContainerCredentials, String> {
    let arn = answer.assumed_role_user.arn;
    // arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION
    let account_id = arn
        .split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("the eks-auth server answered an assumed role ARN without an account: {arn:?}")
        })?
        .to_owned();
    let credentials = answer.credentials;
    let expires_at = Timestamp::from_millis((credentials.expiration * 1000.0).round() as i64);
    Ok(ContainerCredentials {
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        token: credentials.session_token,
        account_id,
        expiration: iso8601(expires_at)?,
        expires_at,
        role_arn: arn,
    })
}

/// RFC 3339 in UTC to the second (`YYYY-MM-DDTHH:MM:SSZ`): the form the
/// SDKs' container credential providers parse.
fn iso8601(at: Timestamp) -> Result<String, String> {
    // Whole seconds, so RFC 3339 writes no fraction.
    time::OffsetDateTime::from_unix_timestamp(at.as_millis().div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| format!("the eks-auth server answered an expiration out of range: {at}"))
}

/// The key given on the command line, when both halves are.
pub fn key_from_flags(
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
) -> Result<Option<Credentials>, String> {
    match (access_key_id, secret_access_key) {
        (Some(id), Some(secret)) => Ok(Some(Credentials::new(
            id,
            secret,
            session_token,
            None,
            "agent-flags",
        ))),
        (None, None) if session_token.is_none() => Ok(None),
        _ => Err(
            "give --access-key-id and --secret-access-key together (and --session-token only with them), \
             or none of them to use the standard AWS credential chain"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests;

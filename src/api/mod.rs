//! The HTTP API: one route table (`router`), one handler per operation, and
//! one table of wire errors (`error`).
//!
//! Every request takes the same path: parse the endpoint from the raw path,
//! read the body and query, call the operation's handler (which parses its
//! input into domain types, makes one store call and maps the result to its
//! wire shape), then stamp a request ID on the answer and log one line.

mod associations;
mod clock;
mod clusters;
mod eks_auth;
pub mod error;
mod export;
mod faults;
mod input;
mod metrics;
mod pagination;
#[cfg(test)]
mod props;
mod router;
mod tags;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth::{Access, Auth};
use crate::domain::{AwsIdentity, Clock};
use crate::faults::Faults;
use crate::store::Store;
pub use eks_auth::EksAuthState;
use error::{ApiError, ErrorType};
use input::{JsonBody, Query};
use metrics::Metrics;
use pagination::PageTokens;
pub use router::{Endpoint, AWS_OPERATIONS};

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub identity: AwsIdentity,
    /// Every "now" a handler reads (token expiry, cluster activation).
    pub clock: Arc<Clock>,
    /// Set with `testing.clock_control`: the clock route is served.
    pub clock_control: Option<ClockControl>,
    pub page_tokens: PageTokens,
    pub metrics: Metrics,
    pub auth: Arc<Auth>,
    /// The fault rules in force (`[faults]`, `/admin/v1/faults`).
    pub faults: Faults,
    pub eks_auth: EksAuthState,
    request_ids: RequestIds,
}

/// What `POST /admin/v1/clock` needs beyond the clock.
pub struct ClockControl {
    /// Runs the token sweep over every token now, blocking until it is done;
    /// answers how many tokens it removed, or why it failed.
    pub sweep_now: Arc<dyn Fn() -> Result<usize, String> + Send + Sync>,
}

impl AppState {
    pub fn new(
        store: Store,
        identity: AwsIdentity,
        clock: Arc<Clock>,
        clock_control: Option<ClockControl>,
        faults: Faults,
        eks_auth: EksAuthState,
    ) -> Self {
        let page_tokens = PageTokens::new(store.page_token_secret());
        AppState {
            store,
            identity,
            clock,
            clock_control,
            page_tokens,
            metrics: Metrics::default(),
            auth: Arc::new(Auth::none()),
            faults,
            eks_auth,
            request_ids: RequestIds::new(),
        }
    }

    /// Checks every request with `auth` (by default none is checked).
    pub fn with_auth(mut self, auth: Arc<Auth>) -> Self {
        self.auth = auth;
        self
    }
}

/// The `x-amzn-requestid` of each answer: a version-4 UUID, as AWS sends.
///
/// `Uuid::new_v4` asks the kernel for random bytes (`getrandom`) every time,
/// a system call per request. These come from one random starting point
/// instead: the n-th ID is that point XOR two different 64-bit mixes of n
/// (each a bijection that scatters every bit of n), with the UUID's version
/// and variant bits then set. So they look as random as AWS's, and two IDs
/// of one server agree only if two mixes agree in 122 bits: no more likely
/// than for random UUIDs. They are unique, not secret: XOR-ing two IDs
/// cancels the starting point, so a client could work out the counter.
struct RequestIds {
    base: u128,
    issued: AtomicU64,
}

/// Makes the upper half's mix of n differ from the lower half's.
const UPPER_HALF_SALT: u64 = 0x5555_5555_5555_5555;

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            base: uuid::Uuid::new_v4().as_u128(),
            issued: AtomicU64::new(0),
        }
    }

    fn next(&self) -> uuid::Uuid {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let upper = u128::from(splitmix64(n ^ UPPER_HALF_SALT));
        let lower = u128::from(splitmix64(n));
        let bits = self.base ^ (upper << 64 | lower);
        uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
    }
}

/// splitmix64's finalizer: a bijection of `u64` that scatters every bit.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How a request body is read.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Larger bodies get 413 (`server.max_body_bytes`).
    pub max_bytes: usize,
    /// A body still arriving this long after the head gets 408, and its
    /// connection is closed (`server.body_read_timeout_seconds`).
    pub read_timeout: Duration,
}

/// Registers the API on an actix `App`.
pub fn configure(
    state: web::Data<AppState>,
    body: BodyLimits,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        #[cfg(feature = "failpoints")]
        cfg.route("/admin/v1/failpoints/{name}", web::put().to(set_fail_point))
            .route(
                "/admin/v1/failpoints/{name}",
                web::delete().to(remove_fail_point),
            );
        cfg.app_data(state)
            .app_data(web::Data::new(body))
            .default_service(web::to(dispatch));
    }
}

/// `PUT /admin/v1/failpoints/{name}` with the fail crate's actions as the
/// body (`return`, `2*off->return`, …): arms a fail point of the store.
/// Only in a build with the `failpoints` feature (the tests'), unsigned.
#[cfg(feature = "failpoints")]
async fn set_fail_point(name: web::Path<String>, actions: String) -> HttpResponse {
    match fail::cfg(name.as_str(), actions.trim()) {
        Ok(()) => {
            log::warn!("fail point {name} armed: {}", actions.trim());
            text(StatusCode::OK, "armed\n".into())
        }
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// `DELETE /admin/v1/failpoints/{name}`: disarms it.
#[cfg(feature = "failpoints")]
async fn remove_fail_point(name: web::Path<String>) -> HttpResponse {
    fail::remove(name.as_str());
    text(StatusCode::OK, "removed\n".into())
}

/// Reads the whole body within `limits`. A refusal leaves the rest of the
/// body unread, and actix closes a connection whose request body was not
/// read to its end once the answer is sent: a stalled client loses its
/// connection at the deadline.
async fn read_body_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorType::RequestEntityTooLargeException,
            format!(
                "The request body is larger than the server accepts ({} bytes, \
                 server.max_body_bytes).",
                limits.max_bytes
            ),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(too_large());
    }
    match actix_web::rt::time::timeout(
        limits.read_timeout,
        payload.to_bytes_limited(limits.max_bytes),
    )
    .await
    {
        Err(_elapsed) => Err(ApiError::new(
            ErrorType::RequestTimeoutException,
            format!(
                "The request body did not arrive within {} s of the request's head \
                 (server.body_read_timeout_seconds); send the whole body at once.",
                limits.read_timeout.as_secs()
            ),
        )),
        Ok(Err(_limit)) => Err(too_large()),
        Ok(Ok(Err(e))) => Err(ApiError::invalid_parameter(format!(
            "The request body could not be read: {e}."
        ))),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
    }
}

fn text(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

pub(crate) fn ok_json<T: Serialize>(value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).expect("output shapes always serialize");
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    limits: web::Data<BodyLimits>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let body = read_body_bytes(&req, payload, **limits).await;
    let endpoint = Endpoint::parse(
        req.method(),
        req.uri().path(),
        state.clock_control.is_some(),
    );
    let operation = endpoint.as_ref().map_or("-", Endpoint::name);
    let cluster = endpoint
        .as_ref()
        .ok()
        .and_then(Endpoint::cluster_label)
        .map(str::to_owned);
    let request_id = state.request_ids.next();
    let mut text = uuid::Uuid::encode_buffer();
    let request_id: &str = request_id.hyphenated().encode_lower(&mut text);
    let result = match body {
        // A stalled body is answered as such whoever sent it: there is no
        // body to check a signature against.
        Err(e) if e.kind == ErrorType::RequestTimeoutException => Err(e),
        body => {
            let payload = body.as_deref().ok();
            // Signature first: a refused caller meets no fault and learns nothing.
            match state.auth.check(&req, access(&req, &endpoint), payload) {
                Err(refused) => Err(refused.into()),
                Ok(()) => match endpoint {
                    Ok(endpoint) => match faults::before(&state, &endpoint, request_id).await {
                        Ok(lost) => {
                            let result = handle(&req, endpoint, body, &state).await;
                            faults::after(&state, lost, operation, result, request_id)
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
            }
        }
    };
    // Every error of a request about a cluster names it, however early it was refused.
    let result = result.map_err(|e| match (&e.cluster_name, cluster) {
        (None, Some(cluster)) => e.with_cluster(cluster),
        _ => e,
    });
    // The Tag APIs have only BadRequest and NotFound for client errors, also
    // for input refused before their handlers (path, query, body).
    let is_tag_api = req.uri().path().starts_with("/tags/");
    // An injected 5xx is a test fault, not a failure of the server.
    let injected = matches!(&result, Err(e) if e.injected);
    let mut response =
        result.unwrap_or_else(|e| if is_tag_api { e.for_tag_api() } else { e }.to_response());
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-amzn-requestid"),
        HeaderValue::from_str(request_id).expect("a UUID is a valid header value"),
    );
    let status = response.status();
    state
        .metrics
        .record(operation, status.as_u16(), started.elapsed());
    let line = format_args!(
        "{operation} {} {} -> {} in {:.1} ms request_id={request_id}",
        req.method(),
        req.uri().path(),
        status.as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    match status.as_u16() {
        500.. if !injected => log::error!("{line}"),
        400.. => log::info!("{line}"),
        _ => log::debug!("{line}"),
    }
    response
}

/// What a request needs to be served: the probes are open, the admin
/// routes need an admin key, everything else (unknown routes too, so that
/// they reveal nothing to strangers) a signature for `eks`.
fn access(req: &HttpRequest, endpoint: &Result<Endpoint, ApiError>) -> Access {
    match endpoint {
        // Probes and scrapers cannot sign; an issuer's discovery document and
        // keys are public, as every OIDC issuer's are, so that anyone can
        // verify its tokens.
        Ok(
            Endpoint::Health
            | Endpoint::Ready
            | Endpoint::Metrics
            | Endpoint::IssuerConfiguration { .. }
            | Endpoint::IssuerKeys { .. },
        ) => Access::Open,
        _ if req.uri().path().starts_with("/admin/") => Access::Admin,
        // EKS Auth is a service of its own, signed for `eks-auth`.
        Ok(Endpoint::AssumeRoleForPodIdentity { .. }) => Access::Api("eks-auth"),
        _ => Access::Api("eks"),
    }
}

async fn handle(
    req: &HttpRequest,
    endpoint: Endpoint,
    body: Result<web::Bytes, ApiError>,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let body = JsonBody::from_request(req, &body?)?;
    let query = Query::parse(req.query_string())?;
    match endpoint {
        Endpoint::CreateCluster => clusters::create(state, body).await,
        Endpoint::ListClusters => clusters::list(state, &query).await,
        Endpoint::DescribeCluster { name } => clusters::describe(state, &name).await,
        Endpoint::DeleteCluster { name } => clusters::delete(state, &name).await,
        Endpoint::SetClusterStatus { name } => clusters::set_status(state, &name, body).await,
        Endpoint::CreatePodIdentityAssociation { cluster } => {
            associations::create(state, &cluster, body).await
        }
        Endpoint::DescribePodIdentityAssociation { cluster, id } => {
            associations::describe(state, &cluster, &id).await
        }
        Endpoint::UpdatePodIdentityAssociation { cluster, id } => {
            associations::update(state, &cluster, &id, body).await
        }
        Endpoint::ListPodIdentityAssociations { cluster } => {
            associations::list(state, &cluster, &query).await
        }
        Endpoint::DeletePodIdentityAssociation { cluster, id } => {
            associations::delete(state, &cluster, &id).await
        }
        Endpoint::Health => Ok(text(StatusCode::OK, "ok\n".into())),
        Endpoint::Ready => Ok(match state.store.failure() {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(failure) => text(StatusCode::SERVICE_UNAVAILABLE, not_ready(&failure)),
        }),
        Endpoint::Metrics => {
            let stats = state.store.stats().await;
            let page = state.metrics.render(&stats) + &state.faults.render_metrics();
            Ok(text(StatusCode::OK, page))
        }
        Endpoint::TagResource { arn } => tags::tag(state, &arn, body).await,
        Endpoint::UntagResource { arn } => tags::untag(state, &arn, &query).await,
        Endpoint::ListTagsForResource { arn } => tags::list(state, &arn).await,
        Endpoint::AdvanceClock => clock::advance(state, body).await,
        Endpoint::Export => export::export(state).await,
        Endpoint::GetFaults => faults::get(state).await,
        Endpoint::PutFaults => faults::put(state, body).await,
        Endpoint::DeleteFaults => faults::delete(state).await,
        Endpoint::AssumeRoleForPodIdentity { cluster } => {
            eks_auth::assume_role_for_pod_identity(state, &cluster, body).await
        }
        Endpoint::IssuerConfiguration { id } => eks_auth::issuer_configuration(state, &id).await,
        Endpoint::IssuerKeys { id } => eks_auth::issuer_keys(state, &id).await,
        Endpoint::IssueServiceAccountToken { name } => {
            eks_auth::issue_service_account_token(state, &name, body).await
        }
        Endpoint::PutServiceAccountIssuer { name } => {
            eks_auth::put_service_account_issuer(state, &name, body).await
        }
        Endpoint::DeleteServiceAccountIssuer { name } => {
            eks_auth::delete_service_account_issuer(state, &name).await
        }
        Endpoint::DescribeCredentials { access_key_id } => {
            eks_auth::describe_credentials(state, &access_key_id).await
        }
    }
}

/// `/readyz`'s answer once the store failed: the cause, and what to do.
fn not_ready(failure: &str) -> String {
    format!(
        "not ready: the store cannot write: {failure}. It takes no writes until the server is \
         restarted (after a storage failure, what the storage engine holds on disk is unknown); \
         every write acknowledged before is on disk, and reads are still served. Free space or \
         repair the disk, then restart the server.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids = RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let id = ids.next();
            assert_eq!(id.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert!(seen.insert(id), "{id} issued twice");
        }
        // Two servers start from different points.
        assert_ne!(RequestIds::new().next(), RequestIds::new().next());
    }
}

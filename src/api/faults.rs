//! The fault rules in the request path (`before` the operation runs,
//! `after` it answered), the propagation delay of association changes, and
//! `GET/PUT/DELETE /admin/v1/faults`.
//!
//! The admin document is `{"seed": N, "rules": [...]}` with the fields of
//! `[[faults.rules]]` (see `docs/faults.md`). A refused document changes
//! nothing; an accepted one replaces every rule and restarts the generator
//! from its seed.

use actix_web::HttpResponse;

use super::error::{ApiError, ErrorType};
use super::input::JsonBody;
use super::{ok_json, AppState, Endpoint};
use crate::domain::{Association, AssociationId, ClusterName, Timestamp};
use crate::faults::{Action, Fault, FaultSpec, InjectedError, PropagationDelay};

/// `GET /admin/v1/faults`: the rules in force, every field filled in.
pub async fn get(state: &AppState) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(&state.faults.spec().to_json()))
}

/// `PUT /admin/v1/faults`: replaces every rule.
pub async fn put(state: &AppState, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let spec = FaultSpec::from_json(body.members()).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "{e}. Nothing changed: the rules in force are as before; fix the document and send \
             it whole again."
        ))
    })?;
    log::info!(
        "fault rules replaced: {} rule(s), seed {}",
        spec.rules.len(),
        spec.seed
    );
    state.faults.replace(spec, state.clock.now());
    get(state).await
}

/// `DELETE /admin/v1/faults`: removes every rule (the seed stays).
pub async fn delete(state: &AppState) -> Result<HttpResponse, ApiError> {
    let seed = state.faults.spec().seed;
    state.faults.replace(
        FaultSpec {
            seed,
            rules: Vec::new(),
        },
        state.clock.now(),
    );
    log::info!("fault rules removed");
    get(state).await
}

/// An answer to lose once the operation has succeeded.
pub struct LostAnswer {
    fault: Fault,
    message: String,
}

/// Before the operation runs: a throttle or error answers now (nothing is
/// written); a latency waits on an async timer; a lost answer is handed
/// back for [`after`]. Admin, health and metrics routes never meet a fault.
pub async fn before(
    state: &AppState,
    endpoint: &Endpoint,
    request_id: &str,
) -> Result<Option<LostAnswer>, ApiError> {
    // With no rules, this load is all a request pays.
    if !state.faults.is_active() || !endpoint.is_aws_operation() {
        return Ok(None);
    }
    let operation = endpoint.name();
    let Some(fault) = state
        .faults
        .decide(operation, cluster_of(endpoint), state.clock.now())
    else {
        return Ok(None);
    };
    match fault.action.clone() {
        Action::Refuse(error, message) => {
            injected(state, &fault, operation, request_id);
            Err(ApiError::injected(error_type(error), message))
        }
        Action::Delay(delay) => {
            injected(state, &fault, operation, request_id);
            actix_web::rt::time::sleep(delay).await;
            Ok(None)
        }
        Action::LoseAnswer(message) => Ok(Some(LostAnswer { fault, message })),
    }
}

/// After the operation: a success whose answer a rule loses becomes a 500.
/// Its write is durable already, and a retry with the same
/// clientRequestToken is answered from the token the store saved with it.
pub fn after(
    state: &AppState,
    lost: Option<LostAnswer>,
    operation: &'static str,
    result: Result<HttpResponse, ApiError>,
    request_id: &str,
) -> Result<HttpResponse, ApiError> {
    match (lost, result) {
        (Some(lost), Ok(answer)) if answer.status().is_success() => {
            injected(state, &lost.fault, operation, request_id);
            Err(ApiError::injected(ErrorType::ServerException, lost.message))
        }
        (_, result) => result,
    }
}

fn injected(state: &AppState, fault: &Fault, operation: &'static str, request_id: &str) {
    state.faults.count(fault.kind, operation);
    log::debug!(
        "fault injected: rule {} ({}) on {operation}: {:?} request_id={request_id}",
        fault.rule,
        fault.kind,
        fault.action
    );
}

fn error_type(error: InjectedError) -> ErrorType {
    match error {
        InjectedError::Throttling => ErrorType::ThrottlingException,
        InjectedError::Server => ErrorType::ServerException,
        InjectedError::ServiceUnavailable => ErrorType::ServiceUnavailableException,
    }
}

/// The cluster a request names in its path, for a rule's `clusters`: the
/// label of the cluster and association routes, or the cluster in a Tag
/// API's ARN. CreateCluster and ListClusters name none.
fn cluster_of(endpoint: &Endpoint) -> Option<&str> {
    match endpoint {
        Endpoint::DescribeCluster { name } | Endpoint::DeleteCluster { name } => Some(name),
        Endpoint::TagResource { arn }
        | Endpoint::UntagResource { arn }
        | Endpoint::ListTagsForResource { arn } => {
            // arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME or
            // …:podidentityassociation/NAME/ID
            let resource = arn.splitn(6, ':').nth(5)?;
            let mut parts = resource.split('/');
            match parts.next()? {
                "cluster" | "podidentityassociation" => parts.next(),
                _ => None,
            }
        }
        other => other.cluster_label(),
    }
}

/// A change to an association, for the propagation delay.
pub enum Change<'a> {
    Created(&'a Association),
    Updated {
        before: &'a Association,
        after: &'a Association,
    },
    Deleted(&'a Association),
}

/// The delay a rule holds back a change by `operation` to an association
/// of `cluster` with, if one does.
pub fn delay_of(
    state: &AppState,
    operation: &str,
    cluster: &ClusterName,
) -> Option<PropagationDelay> {
    state.faults.propagation_delay(operation, cluster.as_str())
}

/// The association as it is before an Update, read only when the Update
/// will be held back.
pub async fn before_update(
    state: &AppState,
    delay: Option<PropagationDelay>,
    cluster: &ClusterName,
    id: &AssociationId,
) -> Result<Option<Association>, ApiError> {
    match delay {
        Some(_) => Ok(Some(
            state.store.association(cluster.clone(), id.clone()).await?,
        )),
        None => Ok(None),
    }
}

/// Holds back a change made at `now` by a rule's delay. A Create or Update
/// answered from a saved token (older than `now`) changed nothing now, so
/// it is not held back again.
pub fn hold_back(
    state: &AppState,
    delay: Option<PropagationDelay>,
    change: Change<'_>,
    now: Timestamp,
) {
    let Some(delay) = delay else {
        return;
    };
    let (changed, before) = match change {
        Change::Created(after) if after.modified_at >= now => (after, None),
        Change::Updated { before, after } if after.modified_at >= now => {
            (after, Some(before.clone()))
        }
        Change::Deleted(deleted) => (deleted, Some(deleted.clone())),
        Change::Created(_) | Change::Updated { .. } => return,
    };
    let key = (
        changed.cluster.as_str(),
        changed.namespace.as_str(),
        changed.service_account.as_str(),
    );
    state.faults.hold_back(delay, key, before, now);
}

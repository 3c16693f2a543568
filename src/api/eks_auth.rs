//! EKS Auth's AssumeRoleForPodIdentity, the cluster issuers' discovery
//! routes, and the admin routes that issue tokens, register external
//! issuers and describe minted credentials.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::HttpResponse;

use super::error::{ApiError, ErrorType};
use super::input::{required, JsonBody};
use super::wire::{
    AssumeRoleForPodIdentityOutput, AssumedRoleUser, Credentials, CredentialsDescription,
    PodIdentityAssociationRef, ServiceAccountIssuerOutput, ServiceAccountTokenOutput, Subject,
};
use super::{ok_json, AppState};
use crate::domain::{ClusterName, ClusterStatus, Namespace, ServiceAccountName};
use crate::eksauth::session::role_request;
use crate::eksauth::{
    keys, token, ClusterIssuer, ClusterIssuers, CredentialGrant, CredentialSource, ExternalIssuer,
    TokenError, TokenRequest, POD_IDENTITY_AUDIENCE,
};
use crate::store::StoreError;

/// What AssumeRoleForPodIdentity needs besides the store.
pub struct EksAuthState {
    /// The base of issuer URLs (`server.public_url`, or `http://` + the bound address).
    pub public_url: String,
    pub credentials: CredentialSource,
    /// `eks_auth.session_duration_seconds`.
    pub session_duration_seconds: u32,
    issuers: IssuerCache,
}

impl EksAuthState {
    pub fn new(
        public_url: String,
        credentials: CredentialSource,
        session_duration_seconds: u32,
    ) -> Self {
        EksAuthState {
            public_url,
            credentials,
            session_duration_seconds,
            issuers: IssuerCache::default(),
        }
    }
}

/// Each cluster's issuers as last read, so that a request does not decode
/// an RSA key and a JWKS again. An entry serves only while the stored issuer
/// is the one it was made from, so a new key or external issuer (or a
/// cluster deleted and created again) is seen by the next request.
#[derive(Default)]
struct IssuerCache(RwLock<HashMap<ClusterName, (ClusterIssuer, Arc<ClusterIssuers>)>>);

impl IssuerCache {
    fn get(
        &self,
        cluster: &ClusterName,
        issuer: &ClusterIssuer,
        public_url: &str,
    ) -> Result<Arc<ClusterIssuers>, ApiError> {
        let cached = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(cluster)
            .filter(|(stored, _)| stored == issuer)
            .map(|(_, issuers)| Arc::clone(issuers));
        if let Some(issuers) = cached {
            return Ok(issuers);
        }
        let issuers = Arc::new(
            ClusterIssuers::new(issuer, public_url)
                .map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))?,
        );
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cluster.clone(), (issuer.clone(), Arc::clone(&issuers)));
        Ok(issuers)
    }
}

/// Cluster states in which AssumeRoleForPodIdentity refuses to answer.
const REFUSING_STATES: [ClusterStatus; 3] = [
    ClusterStatus::Creating,
    ClusterStatus::Deleting,
    ClusterStatus::Failed,
];

fn not_found(message: String) -> ApiError {
    ApiError::new(ErrorType::ResourceNotFoundException, message)
}

/// The cluster label of an EKS Auth or admin route: a name that is not a
/// cluster name is a bad parameter.
fn cluster_name(label: &str) -> Result<ClusterName, ApiError> {
    Ok(ClusterName::parse("clusterName", label)?)
}

/// An unknown cluster, said in EKS Auth's words (its errors carry only a message).
fn cluster_not_found(error: StoreError, cluster: &ClusterName) -> ApiError {
    match error {
        StoreError::Rejected(crate::domain::DomainError::ClusterNotFound(_)) => {
            not_found(format!("No cluster found for name: {cluster}."))
        }
        other => other.into(),
    }
}

pub async fn assume_role_for_pod_identity(
    state: &AppState,
    cluster: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let result = assume_role(state, cluster, body).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) => e.kind.name(),
    };
    state.metrics.record_pod_identity(outcome);
    result
}

async fn assume_role(
    state: &AppState,
    cluster: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let eks_auth = &state.eks_auth;
    let cluster = cluster_name(cluster)?;
    let token = body.required_string("token")?;
    let now = state.clock.now();
    // The namespace and service account the token claims, unchecked: they
    // only say which association to read along with the cluster, in one
    // lookup. The answer uses the names of the verified token, which come
    // from the same signed payload.
    let claimed = token::claimed_subject(token);
    let target = state
        .store
        .pod_identity_target(cluster.clone(), claimed)
        .await
        .map_err(|e| cluster_not_found(e, &cluster))?;
    let issuers = eks_auth
        .issuers
        .get(&cluster, &target.issuer, &eks_auth.public_url)?;
    let verified = issuers.verify(token, &cluster, now)?;
    let status = target.cluster.status_at(now);
    if REFUSING_STATES.contains(&status) {
        return Err(ApiError::new(
            ErrorType::InvalidRequestException,
            format!(
                "Cluster {cluster} is in state {status}; pod identity credentials are issued only \
                 for a cluster that is not CREATING, DELETING or FAILED. Wait for the cluster to \
                 become ACTIVE and retry."
            ),
        ));
    }
    // A `propagation_delay` fault rule may hold a recent change back: the
    // pod then gets what it got before it (no association yet, the old
    // role, or a deleted association), as from a lagging EKS.
    let association = match state.faults.stale_view(
        cluster.as_str(),
        verified.namespace.as_str(),
        verified.service_account.as_str(),
        now,
    ) {
        Some(before) => before,
        None => target.association,
    };
    let Some(association) = association else {
        return Err(not_found(format!(
            "No pod identity association found for namespace {} and service account {} in \
             cluster {cluster}; create one with CreatePodIdentityAssociation.",
            verified.namespace, verified.service_account
        )));
    };
    let cluster_arn = state.identity.cluster_arn(&cluster);
    let request = role_request(
        &association,
        &cluster_arn,
        &verified,
        eks_auth.session_duration_seconds,
    );
    let issued = eks_auth.credentials.issue(&request, now).await?;
    let association_arn = association.arn(&state.identity);
    let grant = CredentialGrant::new(
        &issued,
        &request,
        &association,
        association_arn.clone(),
        &verified,
    );
    state.store.save_credentials(grant).await?;
    log::debug!(
        "credentials {} issued by {} for {}/{} in cluster {cluster} as {}",
        issued.access_key_id,
        eks_auth.credentials.name(),
        verified.namespace,
        verified.service_account,
        issued.assumed_role_arn
    );
    Ok(ok_json(&AssumeRoleForPodIdentityOutput {
        subject: Subject {
            namespace: verified.namespace.as_str(),
            service_account: verified.service_account.as_str(),
        },
        audience: POD_IDENTITY_AUDIENCE,
        pod_identity_association: PodIdentityAssociationRef {
            association_arn: &association_arn,
            association_id: association.id.as_str(),
        },
        assumed_role_user: AssumedRoleUser {
            arn: &issued.assumed_role_arn,
            assume_role_id: &issued.assumed_role_id,
        },
        credentials: Credentials {
            session_token: &issued.session_token,
            secret_access_key: &issued.secret_access_key,
            access_key_id: &issued.access_key_id,
            expiration: issued.expiration.as_epoch_seconds(),
        },
    }))
}

/// The discovery routes: the issuer of the cluster whose issuer ID is `id`.
async fn issuer_by_id(state: &AppState, id: &str) -> Result<ClusterIssuer, ApiError> {
    match state.store.issuer_by_id(id.to_owned()).await? {
        Some((_, issuer)) => Ok(issuer),
        None => Err(not_found(format!(
            "No cluster has the token issuer ID {}; read a cluster's issuer URL from \
             DescribeCluster (identity.oidc.issuer).",
            crate::domain::shown(id)
        ))),
    }
}

pub async fn issuer_configuration(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let issuer = issuer_by_id(state, id).await?;
    Ok(ok_json(&keys::openid_configuration(
        &issuer.url(&state.eks_auth.public_url),
    )))
}

pub async fn issuer_keys(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let issuer = issuer_by_id(state, id).await?;
    let key = crate::eksauth::SigningKey::from_pkcs1_der(&issuer.signing_key)
        .map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))?;
    Ok(ok_json(&keys::jwks(&[&key])))
}

fn expiration_seconds(body: &JsonBody) -> Result<u64, ApiError> {
    let Some(seconds) = body.number("expirationSeconds")? else {
        return Ok(TokenRequest::DEFAULT_EXPIRATION_SECONDS);
    };
    let (min, max) = (
        TokenRequest::MIN_EXPIRATION_SECONDS,
        TokenRequest::MAX_EXPIRATION_SECONDS,
    );
    if seconds.fract() != 0.0 || seconds < min as f64 || seconds > max as f64 {
        return Err(ApiError::invalid_parameter(format!(
            "expirationSeconds {seconds} must be a whole number of seconds from {min} (10 \
             minutes) to {max} (a day)."
        )));
    }
    Ok(seconds as u64)
}

pub async fn issue_service_account_token(
    state: &AppState,
    name: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_name(name)?;
    let pod_name = body.required_string("podName")?;
    if pod_name.is_empty() || pod_name.len() > 253 {
        return Err(ApiError::invalid_parameter(
            "podName must be 1 to 253 characters, a Kubernetes pod name.",
        ));
    }
    let audience = body
        .string("audience")?
        .unwrap_or(POD_IDENTITY_AUDIENCE)
        .to_owned();
    if audience.is_empty() {
        return Err(ApiError::invalid_parameter(
            "audience must not be empty; leave it out for pods.eks.amazonaws.com.",
        ));
    }
    let request = TokenRequest {
        namespace: Namespace::parse(body.required_string("namespace")?)?,
        service_account: ServiceAccountName::parse(body.required_string("serviceAccount")?)?,
        pod_name: pod_name.to_owned(),
        pod_uid: match body.string("podUid")? {
            Some(uid) if !uid.is_empty() => uid.to_owned(),
            _ => uuid::Uuid::new_v4().to_string(),
        },
        audience,
        expiration_seconds: expiration_seconds(&body)?,
    };
    let (_, issuer) = state
        .store
        .cluster_issuer(cluster.clone())
        .await
        .map_err(|e| cluster_not_found(e, &cluster))?;
    let issuers = state
        .eks_auth
        .issuers
        .get(&cluster, &issuer, &state.eks_auth.public_url)?;
    let now = state.clock.now();
    // An RSA signature takes about a millisecond: off the async worker.
    let (token, expiration) = tokio::task::spawn_blocking(move || {
        token::issue(&issuers.signing_key, &issuers.url, &request, now)
    })
    .await
    .map_err(|e| ApiError::from(StoreError::Internal(format!("signing task failed: {e}"))))?;
    Ok(ok_json(&ServiceAccountTokenOutput {
        token,
        expiration: expiration.as_epoch_seconds(),
    }))
}

pub async fn put_service_account_issuer(
    state: &AppState,
    name: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_name(name)?;
    let issuer = body.required_string("issuer")?.to_owned();
    // The JWKS as an object (what `kubectl get --raw /openid/v1/jwks` prints)
    // or as a string holding it.
    let jwks = match (body.object("jwks"), body.string("jwks")) {
        (Ok(Some(object)), _) => serde_json::Value::Object(object.clone()).to_string(),
        (_, Ok(Some(text))) => text.to_owned(),
        _ => {
            return Err(match body.object("jwks") {
                Ok(None) => required("jwks"),
                _ => ApiError::invalid_parameter(
                    "jwks must be a JSON Web Key Set: an object {\"keys\": [...]} or a string \
                     holding one.",
                ),
            })
        }
    };
    let trusted = keys::external_issuer(&issuer, &jwks).map_err(|e| match e {
        TokenError::Malformed(m) | TokenError::Invalid(m) | TokenError::Expired(m) => {
            ApiError::invalid_parameter(m)
        }
    })?;
    let (_, own) = state
        .store
        .cluster_issuer(cluster.clone())
        .await
        .map_err(|e| cluster_not_found(e, &cluster))?;
    if own.url(&state.eks_auth.public_url) == issuer {
        return Err(ApiError::invalid_parameter(format!(
            "issuer {issuer} is cluster {cluster}'s own issuer; register the issuer of another \
             cluster (a kind or k3s cluster's)."
        )));
    }
    state
        .store
        .set_external_issuer(
            cluster.clone(),
            Some(ExternalIssuer {
                issuer: issuer.clone(),
                jwks,
            }),
        )
        .await
        .map_err(|e| cluster_not_found(e, &cluster))?;
    log::info!("cluster {cluster} now accepts tokens of issuer {issuer}");
    Ok(ok_json(&ServiceAccountIssuerOutput {
        issuer: &issuer,
        key_ids: trusted.keys.iter().map(|k| k.kid.as_deref()).collect(),
    }))
}

pub async fn delete_service_account_issuer(
    state: &AppState,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_name(name)?;
    state
        .store
        .set_external_issuer(cluster.clone(), None)
        .await
        .map_err(|e| cluster_not_found(e, &cluster))?;
    log::info!("cluster {cluster} no longer accepts an external issuer's tokens");
    Ok(ok_json(&super::wire::Empty {}))
}

pub async fn describe_credentials(
    state: &AppState,
    access_key_id: &str,
) -> Result<HttpResponse, ApiError> {
    match state
        .store
        .credentials(access_key_id.to_owned(), state.clock.now())
        .await?
    {
        Some(grant) => Ok(ok_json(&CredentialsDescription::new(&grant))),
        None => Err(not_found(format!(
            "No credentials with access key ID {}: none were issued with it, or they have \
             expired.",
            crate::domain::shown(access_key_id)
        ))),
    }
}

//! The pod identity association operations.

use actix_web::HttpResponse;

use super::error::ApiError;
use super::input::JsonBody;
use super::wire::{AssociationOutput, PodIdentityAssociation};
use super::{ok_json, AppState};
use crate::domain::{
    Association, AssociationId, AssociationUpdate, ClientRequestToken, ClusterName, ImmutableClaim,
    Namespace, NewAssociation, RoleArn, ServiceAccountName, Tags, Timestamp,
};

fn association_response(state: &AppState, association: &Association) -> HttpResponse {
    ok_json(&AssociationOutput {
        association: PodIdentityAssociation::new(association, &state.identity),
    })
}

/// The `{name}` label of the association routes.
fn cluster_label(label: &str) -> Result<ClusterName, ApiError> {
    Ok(ClusterName::parse("clusterName", label)?)
}

fn token(body: &JsonBody) -> Result<Option<ClientRequestToken>, ApiError> {
    Ok(body
        .string("clientRequestToken")?
        .map(ClientRequestToken::parse)
        .transpose()?)
}

pub async fn create(
    state: &AppState,
    cluster: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let request = NewAssociation {
        namespace: Namespace::parse(body.required_string("namespace")?)?,
        service_account: ServiceAccountName::parse(body.required_string("serviceAccount")?)?,
        role_arn: RoleArn::parse_in_account(
            "roleArn",
            body.required_string("roleArn")?,
            &state.identity,
        )?,
        tags: Tags::parse("tags", body.string_map("tags")?.unwrap_or_default())?,
    };
    let token = token(&body)?;
    let association = state
        .store
        .create_association(cluster, request, token, Timestamp::now())
        .await?;
    Ok(association_response(state, &association))
}

pub async fn describe(state: &AppState, cluster: &str, id: &str) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let id = AssociationId::parse(id)?;
    let association = state.store.association(cluster, id).await?;
    Ok(association_response(state, &association))
}

/// Body members that name what an association is; Update accepts them only
/// with their stored values.
type ClaimOf = fn(String) -> ImmutableClaim;

const IMMUTABLE_STRINGS: [(&str, ClaimOf); 6] = [
    ("clusterName", ImmutableClaim::ClusterName),
    ("associationId", ImmutableClaim::AssociationId),
    ("associationArn", ImmutableClaim::AssociationArn),
    ("namespace", ImmutableClaim::Namespace),
    ("serviceAccount", ImmutableClaim::ServiceAccount),
    ("ownerArn", ImmutableClaim::OwnerArn),
];

pub async fn update(
    state: &AppState,
    cluster: &str,
    id: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let id = AssociationId::parse(id)?;
    for member in ["disableSessionTags", "targetRoleArn", "policy"] {
        if body.has(member) {
            return Err(ApiError::invalid_parameter(format!(
                "{member} is not supported by this server yet; only roleArn can be updated."
            ))
            .with_cluster(cluster.as_str()));
        }
    }
    let mut claims = Vec::new();
    for (member, claim) in IMMUTABLE_STRINGS {
        if let Some(value) = body.string(member)? {
            claims.push(claim(value.to_owned()));
        }
    }
    if let Some(seconds) = body.number("createdAt")? {
        claims.push(ImmutableClaim::CreatedAt(seconds));
    }
    let role_arn = body
        .string("roleArn")?
        .map(|arn| RoleArn::parse_in_account("roleArn", arn, &state.identity))
        .transpose()?;
    let update = AssociationUpdate { role_arn, claims };
    let token = token(&body)?;
    let association = state
        .store
        .update_association(cluster, id, update, token, Timestamp::now())
        .await?;
    Ok(association_response(state, &association))
}

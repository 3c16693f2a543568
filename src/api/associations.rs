//! The pod identity association operations.

use actix_web::HttpResponse;

use super::error::ApiError;
use super::faults::{before_update, delay_of, hold_back, Change};
use super::input::{JsonBody, Query};
use super::wire::{
    AssociationOutput, ListAssociationsOutput, PodIdentityAssociation,
    PodIdentityAssociationSummary,
};
use super::{ok_json, AppState};
use crate::domain::{
    Association, AssociationId, AssociationUpdate, ClusterName, ImmutableClaim, Namespace,
    NewAssociation, RoleArn, ServiceAccountName, SessionPolicy, Tags,
};
use crate::faults::ListedPage;
use crate::store::AssociationFilter;

fn association_response(state: &AppState, association: &Association) -> HttpResponse {
    ok_json(&AssociationOutput {
        association: PodIdentityAssociation::new(association, &state.identity),
    })
}

/// The `{name}` label of the association routes.
fn cluster_label(label: &str) -> Result<ClusterName, ApiError> {
    Ok(ClusterName::parse("clusterName", label)?)
}

/// `targetRoleArn`: an IAM role of the server's partition, in any account.
/// `Some("")` is `Some(None)`: clear it.
fn target_role_arn(state: &AppState, body: &JsonBody) -> Result<Option<Option<RoleArn>>, ApiError> {
    Ok(match body.string("targetRoleArn")? {
        None => None,
        Some("") => Some(None),
        Some(arn) => Some(Some(RoleArn::parse_in_partition(
            "targetRoleArn",
            arn,
            state.identity.partition,
        )?)),
    })
}

/// `policy`: `Some("")` is `Some(None)`: clear it.
fn policy(body: &JsonBody) -> Result<Option<Option<SessionPolicy>>, ApiError> {
    Ok(match body.string("policy")? {
        None => None,
        Some("") => Some(None),
        Some(text) => Some(Some(SessionPolicy::parse(text)?)),
    })
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
        disable_session_tags: body.bool("disableSessionTags")?.unwrap_or(false),
        target_role_arn: target_role_arn(state, &body)?.flatten(),
        policy: policy(&body)?.flatten(),
    };
    let token = body.client_request_token()?;
    let delay = delay_of(state, "CreatePodIdentityAssociation", &cluster);
    let now = state.clock.now();
    let association = state
        .store
        .create_association(cluster, request, token, now)
        .await?;
    hold_back(state, delay, Change::Created(&association), now);
    Ok(association_response(state, &association))
}

pub async fn describe(state: &AppState, cluster: &str, id: &str) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let id = AssociationId::parse(id)?;
    let association = state.store.association(cluster, id).await?;
    Ok(association_response(state, &association))
}

/// The listing a ListPodIdentityAssociations token belongs to.
fn listing(cluster: &ClusterName, filter: &AssociationFilter) -> String {
    let ns = filter.namespace.as_ref().map_or("", |n| n.as_str());
    let sa = filter.service_account.as_ref().map_or("", |s| s.as_str());
    format!("associations\0{cluster}\0{ns}\0{sa}")
}

pub async fn list(
    state: &AppState,
    cluster: &str,
    query: &Query,
) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let filter = AssociationFilter {
        namespace: query.first("namespace").map(Namespace::parse).transpose()?,
        service_account: query
            .first("serviceAccount")
            .map(ServiceAccountName::parse)
            .transpose()?,
    };
    let limit = query.max_results()?;
    let listing = listing(&cluster, &filter);
    let after = state
        .page_tokens
        .resume_after(&listing, query)?
        .map(|last| AssociationId::parse(&last))
        .transpose()?;
    let page = state
        .store
        .list_associations(cluster.clone(), filter.clone(), after.clone(), limit)
        .await?;
    let next_token = state.page_tokens.next_token(
        &listing,
        page.more,
        page.items.last().map(|last| last.id.as_str()),
    );
    // While a propagation delay holds changes back, the page the client still sees.
    let listed = ListedPage {
        cluster: cluster.as_str(),
        namespace: filter.namespace.as_ref(),
        service_account: filter.service_account.as_ref(),
        after: after.as_ref(),
        items: &page.items,
        more: page.more,
    };
    let stale = state.faults.stale_page(&listed, state.clock.now());
    let associations = stale
        .as_deref()
        .unwrap_or(&page.items)
        .iter()
        .map(|a| PodIdentityAssociationSummary::new(a, &state.identity))
        .collect();
    Ok(ok_json(&ListAssociationsOutput {
        associations,
        next_token,
    }))
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
    let update = AssociationUpdate {
        role_arn,
        disable_session_tags: body.bool("disableSessionTags")?,
        target_role_arn: target_role_arn(state, &body)?,
        policy: policy(&body)?,
        claims,
    };
    let token = body.client_request_token()?;
    let delay = delay_of(state, "UpdatePodIdentityAssociation", &cluster);
    let before = before_update(state, delay, &cluster, &id).await?;
    let now = state.clock.now();
    let association = state
        .store
        .update_association(cluster, id, update, token, now)
        .await?;
    if let Some(before) = &before {
        let after = &association;
        hold_back(state, delay, Change::Updated { before, after }, now);
    }
    Ok(association_response(state, &association))
}

pub async fn delete(state: &AppState, cluster: &str, id: &str) -> Result<HttpResponse, ApiError> {
    let cluster = cluster_label(cluster)?;
    let id = AssociationId::parse(id)?;
    let delay = delay_of(state, "DeletePodIdentityAssociation", &cluster);
    let now = state.clock.now();
    let association = state.store.delete_association(cluster, id, now).await?;
    hold_back(state, delay, Change::Deleted(&association), now);
    Ok(association_response(state, &association))
}

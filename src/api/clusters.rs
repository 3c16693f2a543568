//! CreateCluster, DescribeCluster, ListClusters, DeleteCluster, and the admin status route.

use actix_web::HttpResponse;
use serde_json::Value;

use super::error::{ApiError, ErrorType};
use super::input::{required, JsonBody, Query};
use super::wire::{ClusterOutput, ClusterShape, ListClustersOutput};
use super::{ok_json, AppState};
use crate::domain::{
    parse_kubernetes_version, ClusterName, ClusterStatus, NewCluster, RoleArn, Tags,
    DEFAULT_KUBERNETES_VERSION,
};

fn cluster_response(
    state: &AppState,
    cluster: &crate::domain::Cluster,
    status: ClusterStatus,
) -> HttpResponse {
    ok_json(&ClusterOutput {
        cluster: ClusterShape::new(cluster, status, &state.identity),
    })
}

pub async fn create(state: &AppState, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let name = ClusterName::parse("name", body.required_string("name")?)?;
    let role_arn =
        RoleArn::parse_in_account("roleArn", body.required_string("roleArn")?, &state.identity)?;
    // Required by the Model; all of its members are optional, so `{}` will do.
    let vpc_config = body
        .object("resourcesVpcConfig")?
        .ok_or_else(|| required("resourcesVpcConfig"))?;
    check_vpc_config(vpc_config)?;
    let version = match body.string("version")? {
        Some(v) => parse_kubernetes_version("version", v)?,
        None => DEFAULT_KUBERNETES_VERSION.to_owned(),
    };
    let tags = Tags::parse("tags", body.string_map("tags")?.unwrap_or_default())?;
    let token = body.client_request_token()?;
    let request = NewCluster {
        name,
        role_arn,
        version,
        tags,
    };
    let cluster = state
        .store
        .create_cluster(request, token, state.clock.now())
        .await?;
    // CreateCluster answers with the stored status (CREATING), as EKS does.
    Ok(cluster_response(state, &cluster, cluster.status))
}

/// The `{name}` of DescribeCluster and DeleteCluster. Their error lists have
/// no InvalidParameterException; a name no cluster can have is not found.
fn existing_name(name: &str) -> Result<ClusterName, ApiError> {
    ClusterName::parse("name", name).map_err(|_| {
        ApiError::new(
            ErrorType::ResourceNotFoundException,
            format!("No cluster found for name: {}.", crate::domain::shown(name)),
        )
        .with_cluster(name)
    })
}

/// `VpcConfigRequest`: every member is optional and the server keeps none,
/// but a member of the wrong type is still a bad request.
fn check_vpc_config(config: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    for (member, value) in config {
        let expected = match member.as_str() {
            "subnetIds" | "securityGroupIds" | "publicAccessCidrs" => "a list of strings",
            "endpointPublicAccess" | "endpointPrivateAccess" => "a boolean",
            "controlPlaneEgressMode" => "one of AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED",
            _ => continue, // a member of a newer model
        };
        let ok = match value {
            Value::Null => true,
            Value::Array(items) => {
                expected == "a list of strings" && items.iter().all(Value::is_string)
            }
            Value::Bool(_) => expected == "a boolean",
            Value::String(mode) => {
                member == "controlPlaneEgressMode"
                    && ["AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"]
                        .contains(&mode.as_str())
            }
            _ => false,
        };
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "resourcesVpcConfig.{member} must be {expected}."
            )));
        }
    }
    Ok(())
}

pub async fn describe(state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    let name = existing_name(name)?;
    let (cluster, issuer) = state.store.cluster_issuer(name).await?;
    let status = cluster.status_at(state.clock.now());
    Ok(ok_json(&ClusterOutput {
        cluster: ClusterShape::new(&cluster, status, &state.identity)
            .with_issuer(issuer.url(&state.eks_auth.public_url)),
    }))
}

/// The listing ListClusters' tokens belong to.
const CLUSTERS_LISTING: &str = "clusters";

pub async fn list(state: &AppState, query: &Query) -> Result<HttpResponse, ApiError> {
    let limit = query.max_results()?;
    let after = state
        .page_tokens
        .resume_after(CLUSTERS_LISTING, query)?
        .map(|last| ClusterName::parse("nextToken", &last))
        .transpose()?;
    let page = state.store.list_clusters(after, limit).await?;
    let next_token = state.page_tokens.next_token(
        CLUSTERS_LISTING,
        page.more,
        page.items.last().map(ClusterName::as_str),
    );
    Ok(ok_json(&ListClustersOutput {
        clusters: page.items.iter().map(ClusterName::as_str).collect(),
        next_token,
    }))
}

pub async fn delete(state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    let name = existing_name(name)?;
    let cluster = state.store.delete_cluster(name).await?;
    Ok(cluster_response(state, &cluster, ClusterStatus::Deleting))
}

pub async fn set_status(
    state: &AppState,
    name: &str,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let name = ClusterName::parse("name", name)?;
    let status: ClusterStatus = body.required_string("status")?.parse()?;
    let cluster = state.store.set_cluster_status(name, status).await?;
    log::info!("cluster {} status set to {status}", cluster.name);
    Ok(cluster_response(state, &cluster, cluster.status))
}

//! TagResource, UntagResource and ListTagsForResource, on cluster and
//! association ARNs. These operations have their own error types: every
//! client error is `BadRequestException` or `NotFoundException` (spec §2.6–2.8);
//! `dispatch` maps the errors of every `/tags/` request to them.

use actix_web::HttpResponse;

use super::error::ApiError;
use super::input::{JsonBody, Query};
use super::wire::{Empty, ListTagsOutput};
use super::{ok_json, AppState};
use crate::domain::{TaggableResource, Tags};

fn resource(state: &AppState, arn: &str) -> Result<TaggableResource, ApiError> {
    Ok(TaggableResource::parse(arn, &state.identity)?)
}

pub async fn tag(state: &AppState, arn: &str, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let resource = resource(state, arn)?;
    let tags = body
        .string_map("tags")?
        .ok_or_else(|| super::input::required("tags"))?;
    if tags.is_empty() {
        return Err(ApiError::invalid_parameter(
            "tags must hold at least one tag.",
        ));
    }
    let tags = Tags::parse("tags", tags)?;
    state
        .store
        .tag_resource(resource, arn.to_owned(), tags)
        .await?;
    Ok(ok_json(&Empty {}))
}

pub async fn untag(state: &AppState, arn: &str, query: &Query) -> Result<HttpResponse, ApiError> {
    let resource = resource(state, arn)?;
    let keys = query.all("tagKeys");
    if keys.is_empty() || keys.len() > Tags::MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
                "tagKeys must name 1 to {} tag keys (got {}); repeat the parameter for each key: ?tagKeys=a&tagKeys=b.",
                Tags::MAX_TAGS,
                keys.len()
            )));
    }
    for key in &keys {
        Tags::check_key("tagKeys", key)?;
    }
    let keys = keys.into_iter().map(str::to_owned).collect();
    state
        .store
        .untag_resource(resource, arn.to_owned(), keys)
        .await?;
    Ok(ok_json(&Empty {}))
}

pub async fn list(state: &AppState, arn: &str) -> Result<HttpResponse, ApiError> {
    let resource = resource(state, arn)?;
    let tags = state.store.tags(resource, arn.to_owned()).await?;
    Ok(ok_json(&ListTagsOutput {
        tags: tags.as_map(),
    }))
}

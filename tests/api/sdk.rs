//! The official AWS SDK for Rust (`aws-sdk-eks`) as the test client: every
//! operation the server implements, driven through the SDK against the real
//! binary, as a user's program would. What the SDK checks that hand-written
//! HTTP cannot: that its generated parsers accept our JSON shapes and
//! timestamps, that our error type header maps to its typed errors, that its
//! paginators walk our pages, and that SigV4-signed requests are served.
//!
//! The client is built as the README's user guide shows (static dummy
//! credentials, the server's region, `endpoint_url`), with the host's AWS
//! environment variables ignored so that nothing on the machine can point the
//! tests elsewhere. It uses a plain-HTTP connector: the endpoint is
//! `http://127.0.0.1`, so TLS never takes part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eks::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_eks::error::{BoxError, DisplayErrorContext, SdkError};
use aws_sdk_eks::operation::create_cluster::CreateClusterError;
use aws_sdk_eks::operation::create_pod_identity_association::CreatePodIdentityAssociationError;
use aws_sdk_eks::operation::delete_cluster::DeleteClusterError;
use aws_sdk_eks::operation::delete_pod_identity_association::DeletePodIdentityAssociationError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_eks::operation::describe_pod_identity_association::DescribePodIdentityAssociationError;
use aws_sdk_eks::operation::list_clusters::ListClustersError;
use aws_sdk_eks::operation::list_pod_identity_associations::ListPodIdentityAssociationsError;
use aws_sdk_eks::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_eks::operation::tag_resource::TagResourceError;
use aws_sdk_eks::operation::untag_resource::UntagResourceError;
use aws_sdk_eks::operation::update_pod_identity_association::UpdatePodIdentityAssociationError;
use aws_sdk_eks::operation::RequestId;
use aws_sdk_eks::primitives::DateTime;
use aws_sdk_eks::types::{ClusterStatus, PodIdentityAssociation, VpcConfigRequest};
use serde_json::Value;

use crate::helpers::{role, s, ts, TestApp, ACCOUNT};

/// The server's region (`aws.region`, default `us-east-1`): the SDK signs
/// for it, and every ARN the server makes carries it.
const REGION: &str = "us-east-1";

/// The SDK configuration the README's user guide shows, pointed at `app`.
pub(crate) async fn sdk_config(app: &TestApp) -> aws_config::SdkConfig {
    sdk_config_with(
        &app.base,
        REGION,
        Credentials::new("test", "test", None, None, "static"),
    )
    .await
}

/// The same for any endpoint, region and keys (the auth tests).
pub(crate) async fn sdk_config_with(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        // No AWS_* variable of the host (AWS_ENDPOINT_URL, AWS_PROFILE, …)
        // may take part in a test.
        .empty_test_environment()
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        // Plain HTTP only: the server is on 127.0.0.1. (`build_http` is
        // public but doc-hidden in aws-smithy-http-client; should it go, use
        // `eksauth::sts::https_client()`, which speaks http too.)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .load()
        .await
}

/// An SDK client of `app`'s current server (after a restart the port changes:
/// make a new one).
async fn sdk(app: &TestApp) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::new(&sdk_config(app).await)
}

/// An SDK client of `app` that runs `interceptor` on every request, with fast
/// retries so that a retried attempt costs milliseconds, not seconds.
async fn sdk_with(app: &TestApp, interceptor: impl Intercept + 'static) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::config::Builder::from(&sdk_config(app).await)
        .interceptor(interceptor)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

/// The modeled error of a call that must fail with one; anything else
/// (success, a connection failure, an unparsable answer) fails the test.
#[track_caller]
pub(crate) fn service_error<
    O: std::fmt::Debug,
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    result: Result<O, SdkError<E, R>>,
) -> E {
    match result {
        Ok(output) => panic!("expected a service error, the call succeeded: {output:?}"),
        Err(SdkError::ServiceError(e)) => e.into_err(),
        Err(other) => panic!(
            "expected a service error, got {}",
            DisplayErrorContext(&other)
        ),
    }
}

/// The output of a call that must succeed, with the SDK's whole error chain
/// in the failure message otherwise.
#[track_caller]
pub(crate) fn ok<O, E: std::error::Error + 'static, R: std::fmt::Debug>(
    result: Result<O, SdkError<E, R>>,
) -> O {
    match result {
        Ok(output) => output,
        Err(e) => panic!("the call failed: {}", DisplayErrorContext(&e)),
    }
}

/// Milliseconds since the epoch, rounded: the SDK parses epoch seconds
/// through an f64, so `….922` can arrive as `….921999…` (spec §1.6).
fn millis(t: &DateTime) -> i64 {
    t.secs() * 1000 + i64::from((t.subsec_nanos() + 500_000) / 1_000_000)
}

/// A wire timestamp (epoch seconds) in milliseconds.
fn wire_millis(value: &Value, member: &str) -> i64 {
    (ts(value, member) * 1000.0).round() as i64
}

/// Checks that an association the SDK parsed carries the same values as the
/// server's own JSON for it, timestamps to the millisecond.
#[track_caller]
fn assert_same_association(sdk: &PodIdentityAssociation, wire: &Value) {
    assert_eq!(sdk.cluster_name(), Some(s(wire, "clusterName")));
    assert_eq!(sdk.namespace(), Some(s(wire, "namespace")));
    assert_eq!(sdk.service_account(), Some(s(wire, "serviceAccount")));
    assert_eq!(sdk.role_arn(), Some(s(wire, "roleArn")));
    assert_eq!(sdk.association_arn(), Some(s(wire, "associationArn")));
    assert_eq!(sdk.association_id(), Some(s(wire, "associationId")));
    assert_eq!(sdk.target_role_arn(), wire["targetRoleArn"].as_str());
    assert_eq!(sdk.external_id(), wire["externalId"].as_str());
    assert_eq!(sdk.policy(), wire["policy"].as_str());
    assert_eq!(
        sdk.disable_session_tags(),
        wire["disableSessionTags"].as_bool()
    );
    assert_eq!(sdk.owner_arn(), None, "no add-ons here");
    let wire_tags: HashMap<String, String> =
        serde_json::from_value(wire["tags"].clone()).expect("tags is a string map");
    assert_eq!(sdk.tags(), Some(&wire_tags));
    for (member, value) in [
        ("createdAt", sdk.created_at()),
        ("modifiedAt", sdk.modified_at()),
    ] {
        let value = value.unwrap_or_else(|| panic!("{member} is missing"));
        assert_eq!(millis(value), wire_millis(wire, member), "{member}");
        // The SDK's parse of the server's number, bit for bit.
        assert_eq!(
            *value,
            DateTime::from_secs_f64(ts(wire, member)),
            "{member}"
        );
    }
}

/// A new ACTIVE cluster made through the SDK.
async fn given_cluster(eks: &aws_sdk_eks::Client, name: &str) {
    ok(eks
        .create_cluster()
        .name(name)
        .role_arn(role("eks-cluster-role"))
        .resources_vpc_config(VpcConfigRequest::builder().build())
        .send()
        .await);
    let described = ok(eks.describe_cluster().name(name).send().await);
    assert_eq!(
        described.cluster().and_then(|c| c.status()),
        Some(&ClusterStatus::Active)
    );
}

/// A new association made through the SDK.
async fn given_association(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> PodIdentityAssociation {
    ok(eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(namespace)
        .service_account(service_account)
        .role_arn(role("app"))
        .send()
        .await)
    .association
    .expect("Create answers the association")
}

/// Records every attempt the SDK puts on the wire (after signing: method,
/// URI, headers, JSON body); and, when `fail_first_attempt` is set, turns the
/// first answer into a 500 after the server has acted on it, so that the SDK
/// retries a request that already took effect.
#[derive(Debug, Default, Clone)]
struct Recorder {
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    fail_first_attempt: bool,
}

#[derive(Debug, Clone)]
struct RecordedRequest {
    method: String,
    uri: String,
    headers: HashMap<String, String>,
    body: Option<Value>,
}

impl Recorder {
    fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    /// After signing, so the signature headers are there.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        let body = request
            .body()
            .bytes()
            .filter(|b| !b.is_empty())
            .map(|b| serde_json::from_slice(b).expect("the SDK sends JSON"));
        self.requests
            .lock()
            .expect("not poisoned")
            .push(RecordedRequest {
                method: request.method().to_owned(),
                uri: request.uri().to_owned(),
                headers,
                body,
            });
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempts = self.requests.lock().expect("not poisoned").len();
        if self.fail_first_attempt && attempts == 1 {
            *context.response_mut().status_mut() = 500.try_into().expect("a status code");
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_sdk_config_builder_alone_reaches_the_server() {
    // The README's second Rust snippet: no aws-config, the same settings.
    let app = TestApp::spawn();
    let config = aws_sdk_eks::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(app.base.as_str())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let eks = aws_sdk_eks::Client::from_conf(config);
    given_cluster(&eks, "dev").await;
    let listed = ok(eks.list_clusters().send().await);
    assert_eq!(listed.clusters(), ["dev"]);
    // The SDK finds the server's x-amzn-RequestId, on answers and on errors.
    assert!(listed.request_id().is_some_and(|id| !id.is_empty()));
    let error = eks
        .describe_cluster()
        .name("nope")
        .send()
        .await
        .expect_err("no such cluster");
    assert!(error.request_id().is_some_and(|id| !id.is_empty()));
}

// --- clusters ---------------------------------------------------------------

#[tokio::test]
async fn the_cluster_operations_work_through_the_sdk() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;

    let created = ok(eks
        .create_cluster()
        .name("dev")
        .role_arn(role("eks-cluster-role"))
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .endpoint_public_access(true)
                .build(),
        )
        .version("1.31")
        .tags("team", "platform")
        .send()
        .await)
    .cluster
    .expect("CreateCluster answers the cluster");
    assert_eq!(created.name(), Some("dev"));
    assert_eq!(created.status(), Some(&ClusterStatus::Creating));
    assert_eq!(
        created.arn(),
        Some(format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/dev").as_str())
    );
    assert_eq!(created.version(), Some("1.31"));
    assert_eq!(created.role_arn(), Some(role("eks-cluster-role").as_str()));
    assert_eq!(
        created.tags(),
        Some(&HashMap::from([("team".into(), "platform".into())]))
    );

    let described = ok(eks.describe_cluster().name("dev").send().await)
        .cluster
        .expect("DescribeCluster answers the cluster");
    assert_eq!(described.status(), Some(&ClusterStatus::Active));
    assert_eq!(described.created_at(), created.created_at());
    let wire = app.describe_cluster("dev").cluster();
    let created_at = described.created_at().expect("createdAt");
    assert_eq!(millis(created_at), wire_millis(&wire, "createdAt"));
    assert_eq!(*created_at, DateTime::from_secs_f64(ts(&wire, "createdAt")));

    given_cluster(&eks, "prod").await;
    let listed = ok(eks.list_clusters().send().await);
    assert_eq!(listed.clusters(), ["dev", "prod"]);
    assert_eq!(listed.next_token(), None);

    let deleted = ok(eks.delete_cluster().name("dev").send().await)
        .cluster
        .expect("DeleteCluster answers the cluster");
    assert_eq!(deleted.name(), Some("dev"));
    assert_eq!(deleted.status(), Some(&ClusterStatus::Deleting));

    let gone = service_error(eks.describe_cluster().name("dev").send().await);
    let DescribeClusterError::ResourceNotFoundException(gone) = gone else {
        panic!("expected ResourceNotFoundException, got {gone:?}");
    };
    assert_eq!(gone.cluster_name(), Some("dev"));
    assert!(
        gone.message().is_some_and(|m| m.contains("dev")),
        "{gone:?}"
    );
    assert_eq!(ok(eks.list_clusters().send().await).clusters(), ["prod"]);
}

#[tokio::test]
async fn cluster_errors_arrive_as_the_sdk_typed_errors() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "dev").await;

    let create = |name: &str| {
        eks.create_cluster()
            .name(name)
            .role_arn(role("eks-cluster-role"))
            .resources_vpc_config(VpcConfigRequest::builder().build())
            .send()
    };
    let error = service_error(create("dev").await);
    assert!(
        matches!(error, CreateClusterError::ResourceInUseException(_)),
        "{error:?}"
    );
    let error = service_error(create("-starts-with-a-dash").await);
    assert!(
        matches!(error, CreateClusterError::InvalidParameterException(_)),
        "{error:?}"
    );
    // The SDK sends a request without the required resourcesVpcConfig.
    let error = service_error(
        eks.create_cluster()
            .name("novpc")
            .role_arn(role("eks-cluster-role"))
            .send()
            .await,
    );
    let CreateClusterError::InvalidParameterException(error) = error else {
        panic!("expected InvalidParameterException, got {error:?}");
    };
    assert!(
        error
            .message()
            .is_some_and(|m| m.contains("resourcesVpcConfig")),
        "{error:?}"
    );

    let error = service_error(eks.list_clusters().max_results(0).send().await);
    assert!(
        matches!(error, ListClustersError::InvalidParameterException(_)),
        "{error:?}"
    );
    let error = service_error(eks.list_clusters().next_token("forged").send().await);
    assert!(
        matches!(error, ListClustersError::InvalidParameterException(_)),
        "{error:?}"
    );
    let error = service_error(eks.delete_cluster().name("nope").send().await);
    assert!(
        matches!(error, DeleteClusterError::ResourceNotFoundException(_)),
        "{error:?}"
    );
}

// --- associations -----------------------------------------------------------

#[tokio::test]
async fn an_association_lives_its_whole_life_through_the_sdk() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;

    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("c1")
        .namespace("default")
        .service_account("app")
        .role_arn(role("app-v1"))
        .send()
        .await)
    .association
    .expect("Create answers the association");
    let id = created.association_id().expect("associationId").to_owned();
    assert_eq!(id.len(), 19, "{id}");
    assert_eq!(
        created.association_arn(),
        Some(format!("arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/c1/{id}").as_str())
    );
    assert_eq!(created.modified_at(), created.created_at());
    assert_eq!(created.tags(), Some(&HashMap::new()));
    assert_same_association(&created, &app.describe_association("c1", &id).association());

    let described = ok(eks
        .describe_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .send()
        .await)
    .association
    .expect("Describe answers the association");
    assert_eq!(described, created);

    let updated = ok(eks
        .update_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .role_arn(role("app-v2"))
        .send()
        .await)
    .association
    .expect("Update answers the association");
    assert_eq!(updated.role_arn(), Some(role("app-v2").as_str()));
    assert_eq!(updated.created_at(), created.created_at());
    assert!(updated.modified_at() > created.modified_at(), "{updated:?}");
    assert_same_association(&updated, &app.describe_association("c1", &id).association());

    let listed = ok(eks
        .list_pod_identity_associations()
        .cluster_name("c1")
        .send()
        .await);
    assert_eq!(listed.next_token(), None);
    let [summary] = listed.associations() else {
        panic!("one association: {listed:?}");
    };
    assert_eq!(summary.cluster_name(), Some("c1"));
    assert_eq!(summary.namespace(), Some("default"));
    assert_eq!(summary.service_account(), Some("app"));
    assert_eq!(summary.association_id(), Some(id.as_str()));
    assert_eq!(summary.association_arn(), created.association_arn());
    assert_eq!(summary.owner_arn(), None);

    let deleted = ok(eks
        .delete_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .send()
        .await)
    .association
    .expect("Delete answers the deleted association");
    assert_eq!(deleted, updated);

    let error = service_error(
        eks.describe_pod_identity_association()
            .cluster_name("c1")
            .association_id(&id)
            .send()
            .await,
    );
    let DescribePodIdentityAssociationError::ResourceNotFoundException(error) = error else {
        panic!("expected ResourceNotFoundException, got {error:?}");
    };
    assert_eq!(error.cluster_name(), Some("c1"));
    let error = service_error(
        eks.update_pod_identity_association()
            .cluster_name("c1")
            .association_id(&id)
            .role_arn(role("app-v3"))
            .send()
            .await,
    );
    assert!(
        matches!(
            error,
            UpdatePodIdentityAssociationError::ResourceNotFoundException(_)
        ),
        "{error:?}"
    );
    let error = service_error(
        eks.delete_pod_identity_association()
            .cluster_name("c1")
            .association_id(&id)
            .send()
            .await,
    );
    assert!(
        matches!(
            error,
            DeletePodIdentityAssociationError::ResourceNotFoundException(_)
        ),
        "{error:?}"
    );
    // The service account is free again.
    given_association(&eks, "c1", "default", "app").await;
}

#[tokio::test]
async fn the_session_members_round_trip_through_the_sdk() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    let target = "arn:aws:iam::111122223333:role/target";
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

    // Omitted, they read as the defaults.
    let plain = given_association(&eks, "c1", "default", "plain").await;
    assert_eq!(plain.disable_session_tags(), Some(false));
    assert_eq!(plain.target_role_arn(), None);
    assert_eq!(plain.external_id(), None);
    assert_eq!(plain.policy(), None);

    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("c1")
        .namespace("default")
        .service_account("chained")
        .role_arn(role("app"))
        .disable_session_tags(true)
        .target_role_arn(target)
        .policy(policy)
        .send()
        .await)
    .association
    .expect("association");
    let id = created.association_id().expect("associationId").to_owned();
    assert_eq!(created.disable_session_tags(), Some(true));
    assert_eq!(created.target_role_arn(), Some(target));
    assert_eq!(created.policy(), Some(policy));
    let external_id = created
        .external_id()
        .expect("a target role brings an externalId");
    assert_eq!(external_id.len(), 36, "a UUID: {external_id}");
    assert_same_association(&created, &app.describe_association("c1", &id).association());

    let update = || {
        eks.update_pod_identity_association()
            .cluster_name("c1")
            .association_id(&id)
    };
    // Only roleArn changes; the rest stays, the externalId too.
    let updated = ok(update().role_arn(role("app-v2")).send().await)
        .association
        .expect("association");
    assert_eq!(updated.role_arn(), Some(role("app-v2").as_str()));
    assert_eq!(updated.target_role_arn(), Some(target));
    assert_eq!(updated.external_id(), Some(external_id));
    assert_eq!(updated.policy(), Some(policy));
    assert_eq!(updated.disable_session_tags(), Some(true));

    // An empty string clears the policy, then the target role (and its externalId).
    let updated = ok(update().policy("").send().await)
        .association
        .expect("association");
    assert_eq!(updated.policy(), None);
    let updated = ok(update()
        .target_role_arn("")
        .disable_session_tags(false)
        .send()
        .await)
    .association
    .expect("association");
    assert_eq!(updated.target_role_arn(), None);
    assert_eq!(updated.external_id(), None);
    assert_eq!(updated.disable_session_tags(), Some(false));
    assert_same_association(&updated, &app.describe_association("c1", &id).association());

    // A policy without disableSessionTags is refused, as a typed error.
    let error = service_error(update().policy(policy).send().await);
    assert!(
        matches!(
            error,
            UpdatePodIdentityAssociationError::InvalidParameterException(_)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn association_errors_arrive_as_the_sdk_typed_errors() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    let existing = given_association(&eks, "c1", "default", "app").await;
    let existing_id = existing.association_id().expect("associationId");

    let create = |cluster: &str, service_account: &str, role_arn: &str| {
        eks.create_pod_identity_association()
            .cluster_name(cluster)
            .namespace("default")
            .service_account(service_account)
            .role_arn(role_arn)
            .send()
    };
    let error = service_error(create("c1", "app", &role("other")).await);
    let CreatePodIdentityAssociationError::ResourceInUseException(error) = error else {
        panic!("expected ResourceInUseException, got {error:?}");
    };
    assert_eq!(
        error.message(),
        Some(format!("Association already exists: {existing_id}").as_str())
    );
    let error = service_error(create("nope", "app", &role("app")).await);
    let CreatePodIdentityAssociationError::ResourceNotFoundException(error) = error else {
        panic!("expected ResourceNotFoundException, got {error:?}");
    };
    assert_eq!(error.cluster_name(), Some("nope"));
    let error = service_error(create("c1", "other", "arn:aws:iam::999999999999:role/x").await);
    assert!(
        matches!(
            error,
            CreatePodIdentityAssociationError::InvalidParameterException(_)
        ),
        "{error:?}"
    );
    // The SDK sends a Create without its required body members; the server refuses it.
    let error = service_error(
        eks.create_pod_identity_association()
            .cluster_name("c1")
            .send()
            .await,
    );
    assert!(
        matches!(
            error,
            CreatePodIdentityAssociationError::InvalidParameterException(_)
        ),
        "{error:?}"
    );

    let error = service_error(
        eks.describe_pod_identity_association()
            .cluster_name("c1")
            .association_id("a-short")
            .send()
            .await,
    );
    let DescribePodIdentityAssociationError::InvalidParameterException(error) = error else {
        panic!("expected InvalidParameterException, got {error:?}");
    };
    assert!(
        error.message().is_some_and(
            |m| m.starts_with("The parameter associationId should be 19 characters long")
        ),
        "{error:?}"
    );
    let error = service_error(
        eks.list_pod_identity_associations()
            .cluster_name("c1")
            .next_token("forged")
            .send()
            .await,
    );
    assert!(
        matches!(
            error,
            ListPodIdentityAssociationsError::InvalidParameterException(_)
        ),
        "{error:?}"
    );

    // Writes to a cluster that is not in a writable state.
    app.set_cluster_status("c1", "FAILED").cluster();
    let error = service_error(create("c1", "other", &role("app")).await);
    let CreatePodIdentityAssociationError::InvalidRequestException(error) = error else {
        panic!("expected InvalidRequestException, got {error:?}");
    };
    assert_eq!(error.cluster_name(), Some("c1"));
    let error = service_error(
        eks.update_pod_identity_association()
            .cluster_name("c1")
            .association_id(existing_id)
            .role_arn(role("app-v2"))
            .send()
            .await,
    );
    assert!(
        matches!(
            error,
            UpdatePodIdentityAssociationError::InvalidRequestException(_)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn one_association_over_the_quota_is_a_typed_limit_error() {
    let app = TestApp::spawn_with_config("[limits]\nassociations_per_cluster = 2\n");
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    given_association(&eks, "c1", "default", "a").await;
    given_association(&eks, "c1", "default", "b").await;
    let error = service_error(
        eks.create_pod_identity_association()
            .cluster_name("c1")
            .namespace("default")
            .service_account("c")
            .role_arn(role("app"))
            .send()
            .await,
    );
    let CreatePodIdentityAssociationError::ResourceLimitExceededException(error) = error else {
        panic!("expected ResourceLimitExceededException, got {error:?}");
    };
    assert_eq!(error.cluster_name(), Some("c1"));
}

// --- pagination -------------------------------------------------------------

#[tokio::test]
async fn the_sdk_paginators_walk_every_page() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    for name in ["c1", "c2", "c3", "c4", "c5"] {
        given_cluster(&eks, name).await;
    }
    let mut created = Vec::new();
    for i in 0..7 {
        let namespace = if i % 2 == 0 { "even" } else { "odd" };
        let a = given_association(&eks, "c1", namespace, &format!("sa-{i}")).await;
        created.push(a.association_id().expect("associationId").to_owned());
    }
    created.sort();

    // Pages of 3: 3 + 3 + 1, in ID order, each association once.
    let pages = eks
        .list_pod_identity_associations()
        .cluster_name("c1")
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("{}", DisplayErrorContext(&e)));
    let sizes: Vec<usize> = pages.iter().map(|p| p.associations().len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert!(pages[..2].iter().all(|p| p.next_token().is_some()));
    assert_eq!(pages[2].next_token(), None);
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|p| p.associations())
        .map(|a| a.association_id().expect("associationId").to_owned())
        .collect();
    assert_eq!(listed, created);

    // The items paginator, with a filter: every "even" association, pages of 2.
    let even = eks
        .list_pod_identity_associations()
        .cluster_name("c1")
        .namespace("even")
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("{}", DisplayErrorContext(&e)));
    assert_eq!(even.len(), 4);
    assert!(even.iter().all(|a| a.namespace() == Some("even")));

    let clusters = eks
        .list_clusters()
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("{}", DisplayErrorContext(&e)));
    let pages: Vec<&[String]> = clusters.iter().map(|p| p.clusters()).collect();
    assert_eq!(
        pages,
        [&["c1", "c2"][..], &["c3", "c4"][..], &["c5"][..]],
        "{clusters:?}"
    );
    let names = eks
        .list_clusters()
        .max_results(4)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("{}", DisplayErrorContext(&e)));
    assert_eq!(names, ["c1", "c2", "c3", "c4", "c5"]);
}

// --- tags -------------------------------------------------------------------

#[tokio::test]
async fn tags_round_trip_through_the_sdk() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("c1")
        .namespace("default")
        .service_account("app")
        .role_arn(role("app"))
        .tags("team", "platform")
        .tags("env", "dev")
        .send()
        .await)
    .association
    .expect("association");
    let arn = created
        .association_arn()
        .expect("associationArn")
        .to_owned();
    let id = created.association_id().expect("associationId").to_owned();
    let tags_of = |arn: String| {
        let eks = eks.clone();
        async move {
            ok(eks.list_tags_for_resource().resource_arn(arn).send().await)
                .tags
                .unwrap_or_default()
        }
    };
    let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        tags_of(arn.clone()).await,
        map(&[("team", "platform"), ("env", "dev")])
    );

    // TagResource merges; UntagResource removes the keys named.
    ok(eks
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "prod")
        .tags("owner", "me")
        .send()
        .await);
    assert_eq!(
        tags_of(arn.clone()).await,
        map(&[("team", "platform"), ("env", "prod"), ("owner", "me")])
    );
    ok(eks
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("owner")
        .send()
        .await);
    assert_eq!(tags_of(arn.clone()).await, map(&[("env", "prod")]));
    let described = ok(eks
        .describe_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .send()
        .await)
    .association
    .expect("association");
    assert_eq!(described.tags(), Some(&map(&[("env", "prod")])));

    // Keys with the characters the query string must encode round-trip.
    let odd = "a b+c/d=e:f@g.h-_";
    ok(eks
        .tag_resource()
        .resource_arn(&arn)
        .tags(odd, "+ =")
        .send()
        .await);
    assert_eq!(
        tags_of(arn.clone()).await,
        map(&[("env", "prod"), (odd, "+ =")])
    );
    ok(eks
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys(odd)
        .send()
        .await);
    assert_eq!(tags_of(arn.clone()).await, map(&[("env", "prod")]));

    // A cluster's tags, through its ARN.
    let cluster_arn = format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1");
    assert_eq!(tags_of(cluster_arn.clone()).await, HashMap::new());
    ok(eks
        .tag_resource()
        .resource_arn(&cluster_arn)
        .tags("k", "a value with spaces/and:colons")
        .send()
        .await);
    assert_eq!(
        tags_of(cluster_arn.clone()).await,
        map(&[("k", "a value with spaces/and:colons")])
    );
    let cluster = ok(eks.describe_cluster().name("c1").send().await)
        .cluster
        .expect("cluster");
    assert_eq!(
        cluster.tags(),
        Some(&map(&[("k", "a value with spaces/and:colons")]))
    );
}

#[tokio::test]
async fn tag_errors_arrive_as_the_sdk_typed_errors() {
    let app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    let malformed = "not-an-arn";
    let unknown =
        format!("arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/c1/a-00000000000000000");
    let other_account = "arn:aws:eks:us-east-1:999999999999:cluster/c1";

    for arn in [malformed, other_account] {
        let error = service_error(
            eks.tag_resource()
                .resource_arn(arn)
                .tags("k", "v")
                .send()
                .await,
        );
        assert!(
            matches!(error, TagResourceError::BadRequestException(_)),
            "{arn}: {error:?}"
        );
        let error = service_error(
            eks.untag_resource()
                .resource_arn(arn)
                .tag_keys("k")
                .send()
                .await,
        );
        assert!(
            matches!(error, UntagResourceError::BadRequestException(_)),
            "{arn}: {error:?}"
        );
        let error = service_error(eks.list_tags_for_resource().resource_arn(arn).send().await);
        assert!(
            matches!(error, ListTagsForResourceError::BadRequestException(_)),
            "{arn}: {error:?}"
        );
    }

    let error = service_error(
        eks.tag_resource()
            .resource_arn(&unknown)
            .tags("k", "v")
            .send()
            .await,
    );
    assert!(
        matches!(error, TagResourceError::NotFoundException(_)),
        "{error:?}"
    );
    let error = service_error(
        eks.untag_resource()
            .resource_arn(&unknown)
            .tag_keys("k")
            .send()
            .await,
    );
    assert!(
        matches!(error, UntagResourceError::NotFoundException(_)),
        "{error:?}"
    );
    let error = service_error(
        eks.list_tags_for_resource()
            .resource_arn(&unknown)
            .send()
            .await,
    );
    assert!(
        matches!(error, ListTagsForResourceError::NotFoundException(_)),
        "{error:?}"
    );

    // Rule breaks on a resource that exists: the reserved prefix, and no tags at all
    // (the SDK sends `{}` for a TagResource without tags).
    let cluster_arn = format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1");
    let error = service_error(
        eks.tag_resource()
            .resource_arn(&cluster_arn)
            .tags("aws:reserved", "v")
            .send()
            .await,
    );
    assert!(
        matches!(error, TagResourceError::BadRequestException(_)),
        "{error:?}"
    );
    let error = service_error(eks.tag_resource().resource_arn(&cluster_arn).send().await);
    assert!(
        matches!(error, TagResourceError::BadRequestException(_)),
        "{error:?}"
    );
}

// --- idempotency, signing, durability ---------------------------------------

#[tokio::test]
async fn an_update_without_a_token_is_applied_once_even_when_the_sdk_retries_it() {
    let app = TestApp::spawn();
    let plain = sdk(&app).await;
    given_cluster(&plain, "c1").await;
    let created = given_association(&plain, "c1", "default", "app").await;
    let id = created.association_id().expect("associationId");

    // The first answer is turned into a 500 after the server applied the
    // update: the SDK retries the same request with the token it generated.
    let recorder = Recorder {
        fail_first_attempt: true,
        ..Recorder::default()
    };
    let eks = sdk_with(&app, recorder.clone()).await;
    let updated = ok(eks
        .update_pod_identity_association()
        .cluster_name("c1")
        .association_id(id)
        .role_arn(role("app-v2"))
        .send()
        .await)
    .association
    .expect("association");

    let attempts = recorder.requests();
    assert_eq!(attempts.len(), 2, "one retry: {attempts:?}");
    let bodies: Vec<&Value> = attempts
        .iter()
        .map(|a| a.body.as_ref().expect("Update sends a body"))
        .collect();
    let token = s(bodies[0], "clientRequestToken");
    assert_eq!(token.len(), 36, "the SDK generates a UUID: {token}");
    assert_eq!(bodies[0], bodies[1], "the retry resends the same body");
    assert_eq!(
        attempts[1]
            .headers
            .get("amz-sdk-request")
            .map(String::as_str),
        Some("attempt=2; max=3")
    );

    // Applied once: the retry got the first application's answer, and the
    // stored association is that one.
    assert_eq!(updated.role_arn(), Some(role("app-v2").as_str()));
    assert!(updated.modified_at() > created.modified_at());
    let stored = app.describe_association("c1", id).association();
    assert_same_association(&updated, &stored);

    // A second call is a new request with a new token, applied on its own.
    let again = ok(eks
        .update_pod_identity_association()
        .cluster_name("c1")
        .association_id(id)
        .role_arn(role("app-v3"))
        .send()
        .await)
    .association
    .expect("association");
    let attempts = recorder.requests();
    assert_eq!(attempts.len(), 3);
    let body = attempts[2].body.as_ref().expect("Update sends a body");
    assert_ne!(s(body, "clientRequestToken"), token);
    assert!(again.modified_at() > updated.modified_at());
}

#[tokio::test]
async fn signed_and_unsigned_requests_are_served_alike() {
    let app = TestApp::spawn();
    let recorder = Recorder::default();
    let eks = sdk_with(&app, recorder.clone()).await;
    given_cluster(&eks, "c1").await;

    // The SDK signs with SigV4, for the region and the `eks` service.
    let signed = given_association(&eks, "c1", "default", "signed").await;
    let create = recorder
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.uri.ends_with("/pod-identity-associations"))
        .expect("the Create request was recorded");
    let authorization = &create.headers["authorization"];
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=test/")
            && authorization.contains(&format!("/{REGION}/eks/aws4_request"))
            && authorization.contains("Signature="),
        "{authorization}"
    );
    assert!(create.headers.contains_key("x-amz-date"), "{create:?}");

    // The same operation, unsigned, through the plain HTTP helpers.
    let unsigned = app.given_association("c1", "default", "unsigned", &role("app"));
    let unsigned_id = s(&unsigned, "associationId");
    let signed_id = signed.association_id().expect("associationId");

    // Each is read back alike, signed and unsigned.
    for (id, wire) in [
        (
            signed_id,
            app.describe_association("c1", signed_id).association(),
        ),
        (unsigned_id, unsigned.clone()),
    ] {
        let through_sdk = ok(eks
            .describe_pod_identity_association()
            .cluster_name("c1")
            .association_id(id)
            .send()
            .await)
        .association
        .expect("association");
        assert_same_association(&through_sdk, &wire);
        assert_eq!(app.describe_association("c1", id).association(), wire);
    }
    assert_eq!(
        ok(eks
            .list_pod_identity_associations()
            .cluster_name("c1")
            .send()
            .await)
        .associations()
        .len(),
        2
    );
}

#[tokio::test]
async fn signing_headers_and_query_parameters_are_never_request_members() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("app"));
    app.given_association("c1", "other", "app", &role("app"));
    let id = s(&a, "associationId");
    let agent = ureq::AgentBuilder::new()
        .timeout(crate::helpers::REQUEST_TIMEOUT)
        .build();
    let url = |path: &str| format!("{}{path}", app.base);

    // Signing headers with values no signature check would accept (there is
    // none yet), on an unsigned Update: served, and no header became a member.
    let response = agent
        .post(&url(&format!(
            "/clusters/c1/pod-identity-associations/{id}"
        )))
        .set("Content-Type", "application/json")
        .set(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/eks/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=00",
        )
        .set("X-Amz-Date", "20250101T000000Z")
        .set("X-Amz-Security-Token", "token")
        .set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
        .set("X-Amz-User-Agent", "aws-sdk-rust")
        .set(
            "amz-sdk-invocation-id",
            "00000000-0000-0000-0000-000000000000",
        )
        .set("amz-sdk-request", "attempt=1; max=3")
        .send_string(&format!(r#"{{"roleArn":"{}"}}"#, role("app-v2")))
        .expect("the update is served");
    let updated: Value = response.into_json().expect("JSON");
    assert_eq!(updated["association"]["roleArn"], role("app-v2"));
    assert_eq!(
        updated["association"],
        app.describe_association("c1", id).association()
    );

    // Presigned-URL style query parameters next to real ones: only the real
    // ones count.
    let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=test%2F20250101%2Fus-east-1%2Feks%2Faws4_request\
        &X-Amz-Date=20250101T000000Z&X-Amz-Expires=60\
        &X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Security-Token=token";
    let with = app
        .get(&format!(
            "/clusters/c1/pod-identity-associations?{presigned}&namespace=default"
        ))
        .ok()
        .clone();
    let without = app
        .get("/clusters/c1/pod-identity-associations?namespace=default")
        .ok()
        .clone();
    assert_eq!(with, without);
    assert_eq!(with["associations"].as_array().map(Vec::len), Some(1));
    let all = app
        .get(&format!(
            "/clusters/c1/pod-identity-associations?{presigned}"
        ))
        .ok()
        .clone();
    assert_eq!(all["associations"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn what_the_sdk_wrote_survives_a_sigkill() {
    let mut app = TestApp::spawn();
    let eks = sdk(&app).await;
    given_cluster(&eks, "c1").await;
    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("c1")
        .namespace("default")
        .service_account("app")
        .role_arn(role("app"))
        .target_role_arn("arn:aws:iam::111122223333:role/target")
        .tags("team", "platform")
        .send()
        .await)
    .association
    .expect("association");
    let id = created.association_id().expect("associationId").to_owned();
    let arn = created
        .association_arn()
        .expect("associationArn")
        .to_owned();
    let updated = ok(eks
        .update_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .role_arn(role("app-v2"))
        .disable_session_tags(true)
        .send()
        .await)
    .association
    .expect("association");
    ok(eks
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "dev")
        .send()
        .await);
    // The issuer URL names the listen address, which the restart changes.
    let without_issuer = |c: Option<aws_sdk_eks::types::Cluster>| {
        c.map(|mut c| {
            c.identity = None;
            c
        })
    };
    let cluster_before = without_issuer(ok(eks.describe_cluster().name("c1").send().await).cluster);

    app.restart();
    let eks = sdk(&app).await;

    let described = ok(eks
        .describe_pod_identity_association()
        .cluster_name("c1")
        .association_id(&id)
        .send()
        .await)
    .association
    .expect("association");
    assert_eq!(described.role_arn(), Some(role("app-v2").as_str()));
    assert_eq!(described.disable_session_tags(), Some(true));
    assert_eq!(described.external_id(), updated.external_id());
    assert_eq!(described.created_at(), updated.created_at());
    assert_eq!(described.modified_at(), updated.modified_at());
    assert_eq!(
        described.tags(),
        Some(&HashMap::from([
            ("team".to_owned(), "platform".to_owned()),
            ("env".to_owned(), "dev".to_owned()),
        ]))
    );
    assert_eq!(
        without_issuer(ok(eks.describe_cluster().name("c1").send().await).cluster),
        cluster_before
    );
    assert_eq!(ok(eks.list_clusters().send().await).clusters(), ["c1"]);
}

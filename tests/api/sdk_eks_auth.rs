//! AssumeRoleForPodIdentity through the AWS SDK for Rust's own `eks-auth`
//! client: its parser takes our answer (epoch-second expiration included)
//! and our error type header becomes its typed errors.

use aws_sdk_eksauth::error::{DisplayErrorContext, SdkError};
use aws_sdk_eksauth::operation::assume_role_for_pod_identity::{
    AssumeRoleForPodIdentityError, AssumeRoleForPodIdentityOutput,
};
use serde_json::json;

use crate::eks_auth::{pod_token, put_issuer, ExternalIssuer};
use crate::helpers::{now_seconds, role, s, TestApp, CLOCK_CONTROL};
use crate::sdk::sdk_config;

async fn eks_auth(app: &TestApp) -> aws_sdk_eksauth::Client {
    aws_sdk_eksauth::Client::new(&sdk_config(app).await)
}

async fn call(
    client: &aws_sdk_eksauth::Client,
    cluster: &str,
    token: &str,
) -> Result<AssumeRoleForPodIdentityOutput, AssumeRoleForPodIdentityError> {
    client
        .assume_role_for_pod_identity()
        .cluster_name(cluster)
        .token(token)
        .send()
        .await
        .map_err(|e| match e {
            SdkError::ServiceError(service) => service.into_err(),
            other => panic!("no service answer: {}", DisplayErrorContext(&other)),
        })
}

#[tokio::test]
async fn the_sdk_reads_the_credentials_and_whom_they_are_for() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let association = app.given_association("c1", "prod", "app", &role("app"));
    let token = pod_token(&app, "c1", "prod", "app");
    let client = eks_auth(&app).await;
    let out = call(&client, "c1", &token).await.expect("credentials");
    let subject = out.subject().expect("subject");
    assert_eq!(
        (subject.namespace(), subject.service_account()),
        ("prod", "app")
    );
    assert_eq!(out.audience(), "pods.eks.amazonaws.com");
    let reference = out.pod_identity_association().expect("association");
    assert_eq!(reference.association_id(), s(&association, "associationId"));
    assert_eq!(
        reference.association_arn(),
        s(&association, "associationArn")
    );
    let user = out.assumed_role_user().expect("assumed role user");
    assert!(user
        .arn()
        .starts_with("arn:aws:sts::123456789012:assumed-role/app/eks-c1-app-7d9f-"));
    assert!(user.assume_role_id().starts_with("AROA"));
    let credentials = out.credentials().expect("credentials");
    assert!(credentials.access_key_id().starts_with("ASIA"));
    assert_eq!(credentials.secret_access_key().len(), 40);
    let expires_in = credentials.expiration().secs() as f64 - now_seconds();
    assert!((3500.0..3700.0).contains(&expires_in), "{expires_in}");
}

#[tokio::test]
async fn the_sdk_gets_each_error_as_its_typed_exception() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_association("c1", "prod", "app", &role("app"));
    let client = eks_auth(&app).await;
    let token = pod_token(&app, "c1", "prod", "app");

    let err = call(&client, "c1", "not-a-jwt").await.unwrap_err();
    assert!(err.is_invalid_parameter_exception(), "{err:?}");
    let err = call(&client, "ghost", &token).await.unwrap_err();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let worker = pod_token(&app, "c1", "prod", "worker");
    let err = call(&client, "c1", &worker).await.unwrap_err();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    app.given_cluster("c2");
    let foreign = pod_token(&app, "c2", "prod", "app");
    let err = call(&client, "c1", &foreign).await.unwrap_err();
    assert!(err.is_invalid_token_exception(), "{err:?}");

    let kind = ExternalIssuer::es256("https://kind.example");
    put_issuer(
        &app,
        "c1",
        &json!({"issuer": kind.issuer, "jwks": kind.jwks()}),
    )
    .ok();
    let expired = kind.sign(&kind.claims("prod", "app", -600));
    let err = call(&client, "c1", &expired).await.unwrap_err();
    assert!(err.is_expired_token_exception(), "{err:?}");
    let fresh = kind.sign(&kind.claims("prod", "app", 600));
    call(&client, "c1", &fresh)
        .await
        .expect("the external issuer's token");

    app.set_cluster_status("c1", "FAILED").cluster();
    let err = call(&client, "c1", &token).await.unwrap_err();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    assert!(err.to_string().contains("FAILED") || format!("{err:?}").contains("FAILED"));
}

/// The role the SDK's eks-auth client gets credentials for, by its
/// assumed-role ARN (`…:assumed-role/ROLE/SESSION`); `None` for no association.
async fn role_answered(
    client: &aws_sdk_eksauth::Client,
    cluster: &str,
    token: &str,
) -> Option<String> {
    match call(client, cluster, token).await {
        Ok(out) => {
            let arn = out.assumed_role_user().expect("assumed role user").arn();
            Some(arn.split('/').nth(1).expect("a role name").to_owned())
        }
        Err(AssumeRoleForPodIdentityError::ResourceNotFoundException(_)) => None,
        Err(other) => panic!("unexpected error: {}", DisplayErrorContext(&other)),
    }
}

/// A `propagation_delay` rule, as EKS's eventual consistency: after a
/// Create, an Update and a Delete, the eks-auth client keeps getting what it
/// got before until the delay has passed on the server's clock, while
/// Describe answers the new state at once.
#[tokio::test]
async fn a_propagation_delay_holds_back_each_change_from_the_sdks_eks_auth_client() {
    let app = TestApp::spawn_with_config(CLOCK_CONTROL);
    app.given_cluster("c1");
    let rules = json!({"seed": 1, "rules": [{"operations": ["*"], "clusters": ["c1"],
        "kind": "propagation_delay", "delay_ms": 60_000}]});
    app.put_faults(&rules).ok();
    let token = pod_token(&app, "c1", "prod", "app");
    let client = eks_auth(&app).await;

    // Create: not visible to eks-auth yet.
    let association = app.given_association("c1", "prod", "app", &role("app-v1"));
    let id = s(&association, "associationId").to_owned();
    assert_eq!(role_answered(&client, "c1", &token).await, None);
    app.advance_clock(61);
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v1")
    );

    // Update: the old role until the delay passes; Describe has the new one.
    app.update_association("c1", &id, &json!({"roleArn": role("app-v2")}))
        .ok();
    let described = app.describe_association("c1", &id).association();
    assert_eq!(s(&described, "roleArn"), role("app-v2"));
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v1")
    );
    app.advance_clock(30);
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v1")
    );
    app.advance_clock(31);
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v2")
    );

    // Delete: still answered until the delay passes.
    app.delete_association("c1", &id).ok();
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v2")
    );
    app.advance_clock(61);
    assert_eq!(role_answered(&client, "c1", &token).await, None);

    // Without the rule, a change is seen at once.
    app.delete_faults().ok();
    app.given_association("c1", "prod", "app", &role("app-v3"));
    assert_eq!(
        role_answered(&client, "c1", &token).await.as_deref(),
        Some("app-v3")
    );
}

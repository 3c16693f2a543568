//! CreatePodIdentityAssociation and DescribePodIdentityAssociation.

use serde_json::json;

use crate::helpers::{now_seconds, role, s, ts, TestApp, ACCOUNT};

fn is_association_id(id: &str) -> bool {
    id.len() == 19
        && id.starts_with("a-")
        && id[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[test]
fn create_answers_the_association_in_the_spec_format_with_created_at_equal_to_modified_at() {
    let app = TestApp::spawn();
    app.given_cluster("prod");
    let before = now_seconds();
    let answer = app.create_association(
        "prod",
        &json!({
            "namespace": "payments",
            "serviceAccount": "api.server",
            "roleArn": role("team/payments-api"),
            "tags": { "team": "payments", "env": "" },
        }),
    );
    let after = now_seconds();
    let a = answer.association();

    let id = s(&a, "associationId");
    assert!(is_association_id(id), "association ID {id}");
    assert_eq!(
        s(&a, "associationArn"),
        format!("arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/prod/{id}")
    );
    assert_eq!(a["clusterName"], "prod");
    assert_eq!(a["namespace"], "payments");
    assert_eq!(a["serviceAccount"], "api.server");
    assert_eq!(a["roleArn"], role("team/payments-api"));
    assert_eq!(a["tags"], json!({ "team": "payments", "env": "" }));
    assert!(a.get("ownerArn").is_none(), "no add-on owns it: {a}");
    // Epoch seconds as JSON numbers, taken during the request.
    let created = ts(&a, "createdAt");
    assert!(
        created >= before - 1.0 && created <= after + 1.0,
        "createdAt {created} is not between {before} and {after}"
    );
    assert_eq!(a["createdAt"], a["modifiedAt"]);

    let described = app.describe_association("prod", id).association();
    assert_eq!(described, a);
}

#[test]
fn each_create_gets_its_own_id() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let ids: std::collections::HashSet<String> = (0..10)
        .map(|i| {
            let a = app.given_association("c1", "default", &format!("sa-{i}"), &role("r"));
            s(&a, "associationId").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 10);
}

#[test]
fn a_second_association_for_the_same_service_account_is_409_naming_the_existing_one() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let first = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&first, "associationId");

    let answer = app.create_association(
        "c1",
        &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r2") }),
    );
    let message = answer.error(409, "ResourceInUseException");
    assert!(message.contains(id), "{message}");
    assert_eq!(answer.error_cluster(), Some("c1"));
    // The first one is untouched.
    assert_eq!(app.describe_association("c1", id).association(), first);

    // The same service account in another namespace, or the same pair in
    // another cluster, is another association.
    let other_ns = app.given_association("c1", "other", "app", &role("r2"));
    let other_cluster = app.given_association("c2", "default", "app", &role("r2"));
    assert_ne!(other_ns["associationId"], first["associationId"]);
    assert_ne!(other_cluster["associationId"], first["associationId"]);
    assert_eq!(other_cluster["clusterName"], "c2");
}

#[test]
fn an_association_is_described_only_under_its_own_cluster() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId");
    let answer = app.describe_association("c2", id);
    let message = answer.error(404, "ResourceNotFoundException");
    assert!(message.contains(id), "{message}");
}

#[test]
fn role_arns_with_paths_and_the_longest_names_are_accepted() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let long_name = "n".repeat(64);
    for (i, arn) in [
        role("a/b/c/x+=,.@_-"),
        role(&long_name),
        role(&format!("{}/n", "p".repeat(510))),
    ]
    .iter()
    .enumerate()
    {
        let a = app.given_association("c1", "default", &format!("sa-{i}"), arn);
        assert_eq!(a["roleArn"], arn.as_str());
    }
}

//! UpdatePodIdentityAssociation: what changes, what never does, and modifiedAt.

use serde_json::{json, Value};

use crate::helpers::{role, s, ts, TestApp, IMMUTABLE_RULE};

fn setup() -> (TestApp, Value) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    (app, a)
}

#[test]
fn every_immutable_member_with_another_value_is_refused_and_nothing_changes() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let other_id = "a-0000000000000000z";
    let created_at = ts(&a, "createdAt");
    let cases = [
        ("namespace", json!("other")),
        ("serviceAccount", json!("other")),
        ("clusterName", json!("c2")),
        ("associationId", json!(other_id)),
        (
            "associationArn",
            json!(s(&a, "associationArn").replace(&id, other_id)),
        ),
        ("createdAt", json!(created_at - 60.0)),
        ("createdAt", json!(created_at + 0.001)),
        (
            "ownerArn",
            json!("arn:aws:eks:us-east-1:123456789012:addon/c1/eks-pod-identity-agent/x"),
        ),
    ];
    for (member, value) in cases {
        // With a role change too: the whole request is refused, role included.
        let answer =
            app.update_association("c1", &id, &json!({ member: value, "roleArn": role("r2") }));
        let message = answer.error(400, "InvalidParameterException");
        assert!(message.contains(member), "{member}: {message}");
        assert!(message.contains(IMMUTABLE_RULE), "{member}: {message}");
        assert!(
            message.contains("delete") && message.contains("create"),
            "{member}: the message must say to delete and create again: {message}"
        );
        assert_eq!(answer.error_cluster(), Some("c1"));
        assert_eq!(
            app.describe_association("c1", &id).association(),
            a,
            "{member}: the refused update changed the association"
        );
    }
    // Nothing moved to the other cluster either.
    app.describe_association("c2", &id)
        .error(404, "ResourceNotFoundException");
}

#[test]
fn immutable_members_with_their_stored_values_are_accepted() {
    let (app, a) = setup();
    let id = s(&a, "associationId");
    // One at a time, then all together (a client echoing the association back).
    for member in [
        "namespace",
        "serviceAccount",
        "clusterName",
        "associationId",
        "associationArn",
        "createdAt",
    ] {
        let answer = app.update_association("c1", id, &json!({ member: a[member].clone() }));
        assert_eq!(answer.association(), a, "{member}");
    }
    let mut echo = a.clone();
    let echo_map = echo.as_object_mut().unwrap();
    echo_map.remove("modifiedAt");
    echo_map.remove("tags");
    echo_map.insert("roleArn".into(), json!(role("r2")));
    let updated = app.update_association("c1", id, &echo).association();
    assert_eq!(updated["roleArn"], role("r2"));
    assert_eq!(updated["createdAt"], a["createdAt"]);
    assert_eq!(app.describe_association("c1", id).association(), updated);
}

#[test]
fn created_at_equals_modified_at_after_create_and_a_role_change_moves_only_modified_at() {
    let (app, a) = setup();
    let id = s(&a, "associationId");
    assert_eq!(a["createdAt"], a["modifiedAt"]);

    let mut previous = a.clone();
    for i in 2..6 {
        let updated = app
            .update_association("c1", id, &json!({ "roleArn": role(&format!("r{i}")) }))
            .association();
        assert_eq!(updated["roleArn"], role(&format!("r{i}")));
        assert_eq!(
            updated["createdAt"], a["createdAt"],
            "createdAt never changes"
        );
        assert!(
            ts(&updated, "modifiedAt") > ts(&previous, "modifiedAt"),
            "modifiedAt must move forward: {previous} then {updated}"
        );
        for member in [
            "namespace",
            "serviceAccount",
            "clusterName",
            "associationId",
        ] {
            assert_eq!(updated[member], a[member], "{member}");
        }
        assert_eq!(app.describe_association("c1", id).association(), updated);
        previous = updated;
    }
}

#[test]
fn an_update_that_changes_nothing_succeeds_and_keeps_modified_at() {
    let (app, a) = setup();
    let id = s(&a, "associationId");
    let changed = app
        .update_association("c1", id, &json!({ "roleArn": role("r2") }))
        .association();
    let path = format!("/clusters/c1/pod-identity-associations/{id}");

    let no_ops: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("no body", None),
        ("an empty body", Some(Vec::new())),
        ("{}", Some(b"{}".to_vec())),
        (
            "a token only (what the AWS CLI sends)",
            Some(br#"{"clientRequestToken":"3f1c1c1e-1d52-4f7e-b1a2-000000000001"}"#.to_vec()),
        ),
        (
            "the same role",
            Some(serde_json::to_vec(&json!({ "roleArn": role("r2") })).unwrap()),
        ),
        (
            "the same role and a null member",
            Some(serde_json::to_vec(&json!({ "roleArn": role("r2"), "namespace": null })).unwrap()),
        ),
    ];
    for (what, body) in no_ops {
        let content_type = body.as_ref().map(|_| "application/json");
        let answer = app.request("POST", &path, content_type, body.as_deref());
        assert_eq!(answer.association(), changed, "{what}");
        assert_eq!(
            app.describe_association("c1", id).association(),
            changed,
            "{what}"
        );
    }
}

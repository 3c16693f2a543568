//! DeletePodIdentityAssociation: the answer, what goes with the association
//! (its slot, its tags, its tokens), and when it is refused.

use serde_json::{json, Value};

use crate::helpers::{query, role, s, TestApp, ALL_STATUSES, CLOCK_CONTROL};

const T1: &str = "0b7e2f7c-3b1e-4c55-9d6a-4f1d2c3b4a01";
const U1: &str = "0b7e2f7c-3b1e-4c55-9d6a-4f1d2c3b4a02";
const WELL_FORMED_UNKNOWN_ID: &str = "a-0123456789abcdefg";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

fn listed_ids(app: &TestApp, cluster: &str) -> Vec<String> {
    app.list_all_associations(cluster, &[])
        .iter()
        .map(|a| s(a, "associationId").to_owned())
        .collect()
}

/// An association with every optional member set, updated once so that
/// modifiedAt differs from createdAt; as Describe answers it.
fn full_association(app: &TestApp, cluster: &str, namespace: &str, sa: &str) -> Value {
    let created = app
        .create_association(
            cluster,
            &json!({
                "namespace": namespace,
                "serviceAccount": sa,
                "roleArn": role("r1"),
                "tags": { "team": "payments", "env": "" },
                "disableSessionTags": true,
                "targetRoleArn": "arn:aws:iam::111122223333:role/target",
                "policy": POLICY,
            }),
        )
        .association();
    let id = s(&created, "associationId");
    app.update_association(cluster, id, &json!({ "roleArn": role("r2") }))
        .association();
    app.describe_association(cluster, id).association()
}

#[test]
fn delete_answers_the_deleted_association_in_full_and_then_it_is_gone_for_describe_list_update_and_a_second_delete(
) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = full_association(&app, "c1", "default", "app");
    let id = s(&a, "associationId").to_owned();
    assert_ne!(a["createdAt"], a["modifiedAt"]);
    let other = app.given_association("c1", "default", "other", &role("r"));

    let deleted = app.delete_association("c1", &id).association();
    assert_eq!(
        deleted, a,
        "the answer is the association as it was, every member included"
    );

    for (what, answer) in [
        ("describe", app.describe_association("c1", &id)),
        (
            "update",
            app.update_association("c1", &id, &json!({ "roleArn": role("r3") })),
        ),
        ("a second delete", app.delete_association("c1", &id)),
    ] {
        let message = answer.error(404, "ResourceNotFoundException");
        assert!(message.contains(&id), "{what}: {message}");
        assert_eq!(answer.error_cluster(), Some("c1"), "{what}");
    }
    assert_eq!(
        listed_ids(&app, "c1"),
        vec![s(&other, "associationId").to_owned()]
    );
    assert_eq!(
        app.describe_association("c1", s(&other, "associationId"))
            .association(),
        other,
        "the cluster's other association is untouched"
    );

    // boto3 sends DELETE with an empty body and Content-Length: 0.
    let path = format!(
        "/clusters/c1/pod-identity-associations/{}",
        s(&other, "associationId")
    );
    let answer = app.request("DELETE", &path, None, Some(b""));
    assert_eq!(answer.association(), other);
    assert!(listed_ids(&app, "c1").is_empty());
}

#[test]
fn deleting_frees_the_service_account_for_a_new_association_with_its_own_id_and_none_of_the_old_members(
) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let old = full_association(&app, "c1", "default", "app");
    let old_id = s(&old, "associationId").to_owned();
    app.create_association(
        "c1",
        &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r9") }),
    )
    .error(409, "ResourceInUseException");

    app.delete_association("c1", &old_id).association();
    let new = app
        .create_association(
            "c1",
            &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r9") }),
        )
        .association();
    let new_id = s(&new, "associationId");
    assert_ne!(new_id, old_id);
    assert_eq!(new["roleArn"], role("r9"));
    assert_eq!(new["tags"], json!({}), "no tags of the old association");
    assert_eq!(new["disableSessionTags"], false);
    for member in ["targetRoleArn", "externalId", "policy"] {
        assert!(new.get(member).is_none(), "{member} in {new}");
    }
    assert_eq!(
        app.list_tags(s(&new, "associationArn")).ok(),
        &json!({ "tags": {} })
    );
    assert_eq!(listed_ids(&app, "c1"), vec![new_id.to_owned()]);
    app.describe_association("c1", &old_id)
        .error(404, "ResourceNotFoundException");
}

#[test]
fn the_deleted_associations_tags_are_gone_and_its_arn_is_404_not_found_for_every_tag_api() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = full_association(&app, "c1", "default", "app");
    let arn = s(&a, "associationArn").to_owned();
    app.tag_resource(&arn, &json!({ "added": "later" })).ok();
    assert_eq!(
        app.list_tags(&arn).ok()["tags"],
        json!({ "team": "payments", "env": "", "added": "later" })
    );

    app.delete_association("c1", s(&a, "associationId"))
        .association();
    for (what, answer) in [
        ("list tags", app.list_tags(&arn)),
        ("tag", app.tag_resource(&arn, &json!({ "k": "v" }))),
        ("untag", app.untag_resource(&arn, &["team"])),
    ] {
        let message = answer.error(404, "NotFoundException");
        assert!(message.contains(&arn), "{what}: {message}");
        assert_eq!(answer.error_cluster(), None, "{what}: {}", answer.text);
    }
    // The cluster's own tags are not the association's.
    assert_eq!(
        app.list_tags(&crate::helpers::cluster_arn("c1")).ok(),
        &json!({ "tags": {} })
    );
}

#[test]
fn a_create_retried_with_the_token_of_a_deleted_association_creates_a_new_one_because_its_tokens_went_with_it(
) {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let request = json!({
        "namespace": "default",
        "serviceAccount": "app",
        "roleArn": role("r1"),
        "clientRequestToken": T1,
    });
    let first = app.create_association("c1", &request).association();
    let first_id = s(&first, "associationId").to_owned();
    app.update_association(
        "c1",
        &first_id,
        &json!({ "roleArn": role("r2"), "clientRequestToken": U1 }),
    )
    .association();
    // Before the delete, the retry is answered from the token.
    assert_eq!(app.create_association("c1", &request).association(), first);

    app.delete_association("c1", &first_id).association();
    let counts = app.stored_counts();
    assert_eq!(
        (counts.associations, counts.index, counts.tokens),
        (0, 0, 0),
        "the association, its index entry and its create and update tokens are gone: {counts:?}"
    );

    let second = app.create_association("c1", &request).association();
    let second_id = s(&second, "associationId").to_owned();
    assert_ne!(second_id, first_id, "a new association, not the old answer");
    assert_eq!(second["roleArn"], role("r1"));
    assert_eq!(
        app.describe_association("c1", &second_id).association(),
        second
    );
    // The token now belongs to the new association: a retry gets it again.
    assert_eq!(app.create_association("c1", &request).association(), second);

    // Deleted again, the token is free even for other parameters.
    app.delete_association("c1", &second_id).association();
    let other = app
        .create_association(
            "c1",
            &json!({
                "namespace": "default",
                "serviceAccount": "other",
                "roleArn": role("r3"),
                "clientRequestToken": T1,
            }),
        )
        .association();
    assert_eq!(other["serviceAccount"], "other");
    assert_eq!(
        listed_ids(&app, "c1"),
        vec![s(&other, "associationId").to_owned()]
    );
}

#[test]
fn delete_is_refused_with_400_invalid_request_while_the_cluster_is_not_writable_and_the_association_stays(
) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();
    for status in ALL_STATUSES {
        if status == "ACTIVE" || status == "UPDATING" {
            continue;
        }
        app.set_cluster_status("c1", status).cluster();
        let answer = app.delete_association("c1", &id);
        let message = answer.error(400, "InvalidRequestException");
        assert!(
            message.contains("c1") && message.contains(status),
            "{status}: the message must name the cluster and its state: {message}"
        );
        assert_eq!(answer.error_cluster(), Some("c1"), "{status}");
        assert_eq!(
            app.describe_association("c1", &id).association(),
            a,
            "{status}: reads work and the association stays"
        );
        assert_eq!(listed_ids(&app, "c1"), vec![id.clone()], "{status}");
    }
    app.set_cluster_status("c1", "UPDATING").cluster();
    assert_eq!(app.delete_association("c1", &id).association(), a);
    app.describe_association("c1", &id)
        .error(404, "ResourceNotFoundException");
}

#[test]
fn a_malformed_association_id_is_400_invalid_parameter_and_an_unknown_cluster_or_id_is_404() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();

    for bad in [
        "a-123",
        "x",
        "a-0123456789abcdefgh",
        "a-0123456789ABCDEFG",
        "b-0123456789abcdefg",
        "a-0123456789abcdef%20",
    ] {
        let answer = app.delete_association("c1", bad);
        let message = answer.error(400, "InvalidParameterException");
        assert!(message.contains("associationId"), "{bad}: {message}");
    }
    let message = app
        .delete_association("c1", "a-123")
        .error(400, "InvalidParameterException");
    assert!(
        message.contains("should be 19 characters long"),
        "{message}"
    );

    let ghost = app.delete_association("ghost", WELL_FORMED_UNKNOWN_ID);
    let message = ghost.error(404, "ResourceNotFoundException");
    assert!(message.contains("ghost"), "{message}");
    assert_eq!(ghost.error_cluster(), Some("ghost"));

    let unknown = app.delete_association("c1", WELL_FORMED_UNKNOWN_ID);
    let message = unknown.error(404, "ResourceNotFoundException");
    assert!(message.contains(WELL_FORMED_UNKNOWN_ID), "{message}");
    assert_eq!(unknown.error_cluster(), Some("c1"));

    // c1's association cannot be deleted through another cluster.
    let elsewhere = app.delete_association("c2", &id);
    elsewhere.error(404, "ResourceNotFoundException");
    assert_eq!(elsewhere.error_cluster(), Some("c2"));

    assert_eq!(app.describe_association("c1", &id).association(), a);
    assert_eq!(listed_ids(&app, "c1"), vec![id.clone()]);
    assert!(
        app.list_associations("c2", &query(&[])).ok()["associations"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[test]
fn concurrent_deletes_of_one_association_succeed_exactly_once() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    for round in 0..5 {
        let a = app.given_association("c1", "default", &format!("sa-{round}"), &role("r"));
        let id = s(&a, "associationId").to_owned();
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let client = app.client();
                    let id = id.clone();
                    scope.spawn(move || {
                        let answer = client.delete_association("c1", &id);
                        if answer.status == 200 {
                            assert_eq!(answer.association()["associationId"], id.as_str());
                        } else {
                            answer.error(404, "ResourceNotFoundException");
                        }
                        answer.status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|&&status| status == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
    assert!(listed_ids(&app, "c1").is_empty());
}

#[test]
fn deleting_an_association_leaves_alone_a_newer_associations_create_token_that_reused_its_expired_token(
) {
    // The server's clock is moved past a token's time, so that it expires
    // and is reused within the test.
    let app = TestApp::spawn_with_config(&format!(
        "[idempotency]\ntoken_ttl_seconds = 60\n{CLOCK_CONTROL}"
    ));
    app.given_cluster("c1");
    let request = |sa: &str| {
        json!({
            "namespace": "default",
            "serviceAccount": sa,
            "roleArn": role("r1"),
            "clientRequestToken": T1,
        })
    };
    let old = app.create_association("c1", &request("old")).association();
    app.advance_clock(61);

    // T1 has expired, so it is free for a new request: a new association.
    let new = app.create_association("c1", &request("new")).association();
    assert_ne!(new["associationId"], old["associationId"]);
    assert_eq!(
        app.create_association("c1", &request("new")).association(),
        new
    );

    // Deleting the old association removes its own tokens only: T1 now
    // belongs to the new association, whose retry still gets its first answer.
    app.delete_association("c1", s(&old, "associationId"))
        .association();
    let retry = app.create_association("c1", &request("new"));
    assert_eq!(
        retry.status, 200,
        "the retry of the new association's create lost its token: {}",
        retry.text
    );
    assert_eq!(retry.association(), new);
}

//! clientRequestToken: a retry gets the first answer again, also after a restart.

use serde_json::json;

use crate::helpers::{role, s, TestApp, CLOCK_CONTROL};

const T1: &str = "6c0f7e0a-8f8b-4b6e-9d43-0d8c0a6f1a01";
const T2: &str = "6c0f7e0a-8f8b-4b6e-9d43-0d8c0a6f1a02";

#[test]
fn a_create_retried_with_its_token_and_parameters_returns_the_first_answer_also_after_a_restart() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let request = json!({
        "namespace": "default",
        "serviceAccount": "app",
        "roleArn": role("r1"),
        "tags": { "a": "1", "b": "2" },
        "clientRequestToken": T1,
    });
    let first = app.create_association("c1", &request).association();
    let id = s(&first, "associationId").to_owned();

    let retry = app.create_association("c1", &request).association();
    assert_eq!(
        retry, first,
        "same associationId, same modifiedAt, same everything"
    );
    // The same members in another order are the same parameters.
    let reordered = json!({
        "clientRequestToken": T1,
        "tags": { "b": "2", "a": "1" },
        "roleArn": role("r1"),
        "serviceAccount": "app",
        "namespace": "default",
    });
    assert_eq!(
        app.create_association("c1", &reordered).association(),
        first
    );

    app.restart();
    assert_eq!(app.create_association("c1", &request).association(), first);
    assert_eq!(app.describe_association("c1", &id).association(), first);

    // A later change does not make the retry fail: it gets the first answer
    // again, and the change stays.
    let updated = app
        .update_association("c1", &id, &json!({ "roleArn": role("r2") }))
        .association();
    assert_eq!(app.create_association("c1", &request).association(), first);
    assert_eq!(app.describe_association("c1", &id).association(), updated);

    // Without the token, the same request is a second association: 409.
    let mut untokened = request.clone();
    untokened
        .as_object_mut()
        .unwrap()
        .remove("clientRequestToken");
    let message = app
        .create_association("c1", &untokened)
        .error(409, "ResourceInUseException");
    assert!(message.contains(&id), "{message}");
}

#[test]
fn a_create_token_reused_with_other_parameters_is_refused_naming_the_token() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let request = json!({
        "namespace": "default",
        "serviceAccount": "app",
        "roleArn": role("r1"),
        "clientRequestToken": T1,
    });
    let first = app.create_association("c1", &request).association();
    let id = s(&first, "associationId").to_owned();

    let variants = [
        json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r2"), "clientRequestToken": T1 }),
        json!({ "namespace": "default", "serviceAccount": "other", "roleArn": role("r1"), "clientRequestToken": T1 }),
        json!({ "namespace": "other", "serviceAccount": "app", "roleArn": role("r1"), "clientRequestToken": T1 }),
        json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r1"), "tags": { "k": "v" }, "clientRequestToken": T1 }),
    ];
    for round in 0..2 {
        for variant in &variants {
            let answer = app.create_association("c1", variant);
            let message = answer.error(400, "InvalidParameterException");
            assert!(
                message.contains("clientRequestToken"),
                "round {round}: {message}"
            );
            assert_eq!(answer.error_cluster(), Some("c1"));
        }
        // Nothing was created by the refused requests: "other" is still free.
        assert_eq!(app.describe_association("c1", &id).association(), first);
        app.restart();
    }
    let other = app.given_association("c1", "default", "other", &role("r1"));
    assert_ne!(other["associationId"], first["associationId"]);
}

#[test]
fn a_token_is_scoped_to_its_operation_its_cluster_and_its_association() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let create = |cluster: &str, sa: &str| {
        app.create_association(
            cluster,
            &json!({
                "namespace": "default",
                "serviceAccount": sa,
                "roleArn": role("r1"),
                "clientRequestToken": T1,
            }),
        )
        .association()
    };
    let a = create("c1", "app");
    // The same token in another cluster: another association.
    let b = create("c2", "app");
    assert_ne!(a["associationId"], b["associationId"]);
    assert_eq!(b["clusterName"], "c2");

    // The same token on Update: an update, not a replay of the create.
    let a_id = s(&a, "associationId").to_owned();
    let b_id = s(&b, "associationId").to_owned();
    let updated_a = app
        .update_association(
            "c1",
            &a_id,
            &json!({ "roleArn": role("r2"), "clientRequestToken": T1 }),
        )
        .association();
    assert_eq!(updated_a["roleArn"], role("r2"));
    // ... and on an update of another association: applied to that one.
    let updated_b = app
        .update_association(
            "c2",
            &b_id,
            &json!({ "roleArn": role("r3"), "clientRequestToken": T1 }),
        )
        .association();
    assert_eq!(updated_b["roleArn"], role("r3"));
    assert_eq!(
        app.describe_association("c1", &a_id).association(),
        updated_a
    );
    assert_eq!(
        app.describe_association("c2", &b_id).association(),
        updated_b
    );

    // And CreateCluster with it makes a cluster.
    let cluster = app
        .create_cluster_with(&json!({
            "name": "c3",
            "roleArn": role("eks"),
            "resourcesVpcConfig": {},
            "clientRequestToken": T1,
        }))
        .cluster();
    assert_eq!(cluster["name"], "c3");
}

#[test]
fn an_update_retried_with_its_token_returns_its_first_answer_and_changes_nothing_also_after_a_restart(
) {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();
    let first_request = json!({ "roleArn": role("r2"), "clientRequestToken": T1 });
    let second_request = json!({ "roleArn": role("r3"), "clientRequestToken": T2 });

    let first = app
        .update_association("c1", &id, &first_request)
        .association();
    assert_eq!(first["roleArn"], role("r2"));
    let second = app
        .update_association("c1", &id, &second_request)
        .association();
    assert_eq!(second["roleArn"], role("r3"));

    for round in 0..2 {
        let retry = app
            .update_association("c1", &id, &first_request)
            .association();
        assert_eq!(retry, first, "round {round}: the first answer again");
        assert_eq!(
            app.update_association("c1", &id, &second_request)
                .association(),
            second,
            "round {round}"
        );
        let stored = app.describe_association("c1", &id).association();
        assert_eq!(stored, second, "round {round}: the retry changed nothing");

        // The token with other parameters is refused, naming the token.
        let reused = app.update_association(
            "c1",
            &id,
            &json!({ "roleArn": role("r4"), "clientRequestToken": T1 }),
        );
        let message = reused.error(400, "InvalidParameterException");
        assert!(message.contains("clientRequestToken"), "{message}");
        assert_eq!(app.describe_association("c1", &id).association(), second);
        app.restart();
    }
}

#[test]
fn an_expired_token_is_free_again_and_the_sweep_removes_it() {
    let mut app = TestApp::spawn_with_config(&format!(
        "[idempotency]\ntoken_ttl_seconds = 60\n{CLOCK_CONTROL}"
    ));
    app.given_cluster("c1");
    let first = app
        .create_association(
            "c1",
            &json!({
                "namespace": "default", "serviceAccount": "app", "roleArn": role("r1"),
                "clientRequestToken": T1,
            }),
        )
        .association();
    let id = s(&first, "associationId").to_owned();
    app.update_association(
        "c1",
        &id,
        &json!({ "roleArn": role("r2"), "clientRequestToken": T2 }),
    )
    .association();
    // Still remembered well within its time...
    app.advance_clock(50);
    let retry = app.update_association(
        "c1",
        &id,
        &json!({ "roleArn": role("r9"), "clientRequestToken": T2 }),
    );
    retry.error(400, "InvalidParameterException");
    app.advance_clock(11);

    // ... free again after it: the same token with other parameters is a new request...
    let other = app
        .create_association(
            "c1",
            &json!({
                "namespace": "default", "serviceAccount": "other", "roleArn": role("r1"),
                "clientRequestToken": T1,
            }),
        )
        .association();
    assert_ne!(other["associationId"], first["associationId"]);
    // ... and a retry of the expired update is applied again as a change.
    app.update_association("c1", &id, &json!({ "roleArn": role("r3") }))
        .association();
    let again = app
        .update_association(
            "c1",
            &id,
            &json!({ "roleArn": role("r2"), "clientRequestToken": T2 }),
        )
        .association();
    assert_eq!(again["roleArn"], role("r2"));

    // The sweep removes expired tokens: the two saved again just now (in
    // place of the expired ones), once their time is up too.
    assert_eq!(app.advance_clock_and_sweep(61), 2);
    // A write without a token after it makes the sweep's work durable.
    app.update_association("c1", &id, &json!({ "roleArn": role("s") }))
        .association();
    let counts = app.stored_counts();
    assert_eq!(counts.tokens, 0, "{counts:?}");
}

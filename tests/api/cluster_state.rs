//! Association writes against every cluster status.

use serde_json::json;

use crate::helpers::{role, s, TestApp, ALL_STATUSES, CLOCK_CONTROL};

/// Sets every status in turn and tries both association writes; they must
/// succeed exactly in `writable`, and reads must work in every state.
fn check_every_status_against_every_write(app: &TestApp, writable: &[&str]) {
    app.given_cluster("c1");
    app.set_cluster_status("c1", writable[0]).cluster();
    let a = app.given_association("c1", "default", "app", &role("r0"));
    let id = s(&a, "associationId").to_owned();
    let mut current = a;

    for (i, status) in ALL_STATUSES.into_iter().enumerate() {
        let set = app.set_cluster_status("c1", status).cluster();
        assert_eq!(set["status"], status);
        assert_eq!(set["name"], "c1");
        assert_eq!(app.describe_cluster("c1").cluster()["status"], status);
        let allowed = writable.contains(&status);

        let create = app.create_association(
            "c1",
            &json!({
                "namespace": "default",
                "serviceAccount": format!("sa-{i}"),
                "roleArn": role("r"),
            }),
        );
        let update = app.update_association(
            "c1",
            &id,
            &json!({ "roleArn": role(&format!("r{}", i + 1)) }),
        );
        for (write, answer) in [("create", &create), ("update", &update)] {
            if allowed {
                answer.ok();
            } else {
                let message = answer.error(400, "InvalidRequestException");
                assert!(
                    message.contains("c1") && message.contains(status),
                    "{write} in {status}: the message must name the cluster and its state: {message}"
                );
                assert_eq!(answer.error_cluster(), Some("c1"), "{write} in {status}");
            }
        }
        if allowed {
            current = update.association();
            assert_eq!(current["roleArn"], role(&format!("r{}", i + 1)));
            let created = create.association();
            assert_eq!(
                app.describe_association("c1", s(&created, "associationId"))
                    .association(),
                created
            );
        }
        // Reads work in every state, and a refused update changed nothing.
        assert_eq!(
            app.describe_association("c1", &id).association(),
            current,
            "describe in {status}"
        );
    }

    // Refused creates stored nothing: each service account is still free.
    app.set_cluster_status("c1", writable[0]).cluster();
    for (i, status) in ALL_STATUSES.into_iter().enumerate() {
        let answer = app.create_association(
            "c1",
            &json!({
                "namespace": "default",
                "serviceAccount": format!("sa-{i}"),
                "roleArn": role("r"),
            }),
        );
        if writable.contains(&status) {
            answer.error(409, "ResourceInUseException");
        } else {
            answer.ok();
        }
    }
}

#[test]
fn association_writes_are_accepted_only_while_the_cluster_is_active_or_updating() {
    let app = TestApp::spawn();
    check_every_status_against_every_write(&app, &["ACTIVE", "UPDATING"]);
}

#[test]
fn writable_states_from_the_config_file_decide_which_states_accept_writes() {
    let app =
        TestApp::spawn_with_config("[clusters]\nwritable_states = [\"FAILED\", \"PENDING\"]\n");
    // A new cluster reads as ACTIVE, which is not writable here.
    app.given_cluster("c0");
    let message = app
        .create_association(
            "c0",
            &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r") }),
        )
        .error(400, "InvalidRequestException");
    assert!(
        message.contains("c0") && message.contains("ACTIVE"),
        "{message}"
    );
    check_every_status_against_every_write(&app, &["FAILED", "PENDING"]);
}

#[test]
fn a_status_set_through_the_admin_route_stays_also_after_a_restart() {
    let mut app = TestApp::spawn_with_config(CLOCK_CONTROL);
    app.given_cluster("c1");
    app.create_cluster("c2").cluster();
    // CREATING set by hand does not turn ACTIVE by itself (delay 0 otherwise).
    assert_eq!(
        app.set_cluster_status("c1", "CREATING").cluster()["status"],
        "CREATING"
    );
    assert_eq!(
        app.set_cluster_status("c2", "UPDATING").cluster()["status"],
        "UPDATING"
    );
    app.advance_clock(86_400);
    assert_eq!(app.describe_cluster("c1").cluster()["status"], "CREATING");
    app.restart();
    assert_eq!(app.describe_cluster("c1").cluster()["status"], "CREATING");
    assert_eq!(app.describe_cluster("c2").cluster()["status"], "UPDATING");
}

#[test]
fn the_admin_route_refuses_an_unknown_status_and_an_unknown_cluster() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    for status in ["RUNNING", "active", ""] {
        let message = app
            .set_cluster_status("c1", status)
            .error(400, "InvalidParameterException");
        assert!(message.contains("status"), "{message}");
    }
    assert_eq!(app.describe_cluster("c1").cluster()["status"], "ACTIVE");
    let answer = app.set_cluster_status("nope", "ACTIVE");
    let message = answer.error(404, "ResourceNotFoundException");
    assert!(message.contains("nope"), "{message}");
    app.describe_cluster("nope")
        .error(404, "ResourceNotFoundException");
}

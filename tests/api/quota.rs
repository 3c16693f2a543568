//! The per-cluster association quota (`limits.associations_per_cluster`),
//! here 3: the Create over it, and the count through deletes, refusals,
//! restarts and races.

use serde_json::{json, Value};

use crate::helpers::{role, s, Answer, Client, TestApp};

const LIMIT_3: &str = "[limits]\nassociations_per_cluster = 3\n";
const T1: &str = "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c01";

fn request(sa: &str) -> Value {
    json!({ "namespace": "default", "serviceAccount": sa, "roleArn": role("r") })
}

#[track_caller]
fn create(client: &Client, cluster: &str, sa: &str) -> Answer {
    client.create_association(cluster, &request(sa))
}

/// The answer must be the quota refusal for `cluster`.
#[track_caller]
fn assert_over_limit(answer: &Answer, cluster: &str) {
    let message = answer.error(400, "ResourceLimitExceededException");
    assert!(
        message.contains(cluster)
            && message
                .split(|c: char| !c.is_ascii_digit())
                .any(|number| number == "3"),
        "the message must name the cluster and the limit: {message}"
    );
    assert_eq!(answer.error_cluster(), Some(cluster));
}

fn count(app: &TestApp, cluster: &str) -> usize {
    app.list_all_associations(cluster, &[]).len()
}

/// A server with the limit of 3 and cluster "c1" holding `n` associations
/// `sa-0..`; answers their IDs.
fn setup(n: usize) -> (TestApp, Vec<String>) {
    let app = TestApp::spawn_with_config(LIMIT_3);
    app.given_cluster("c1");
    let ids = (0..n)
        .map(|i| {
            let a = create(&app, "c1", &format!("sa-{i}")).association();
            s(&a, "associationId").to_owned()
        })
        .collect();
    (app, ids)
}

#[test]
fn the_create_over_the_limit_is_400_resource_limit_exceeded_naming_the_cluster_and_stores_nothing()
{
    let (app, _) = setup(3);
    let mut tokened = request("sa-over");
    tokened["clientRequestToken"] = json!(T1);
    for _ in 0..2 {
        assert_over_limit(&create(&app, "c1", "sa-over"), "c1");
        assert_over_limit(&app.create_association("c1", &tokened), "c1");
    }
    assert_eq!(count(&app, "c1"), 3);

    // The refused create's token was not kept: once there is room, the same
    // request with the same token creates the association.
    let first = app.list_all_associations("c1", &[]);
    app.delete_association("c1", s(&first[0], "associationId"))
        .association();
    let created = app.create_association("c1", &tokened).association();
    assert_eq!(created["serviceAccount"], "sa-over");
    assert_eq!(
        app.create_association("c1", &tokened).association(),
        created
    );
}

#[test]
fn after_a_delete_exactly_one_more_create_succeeds() {
    let (app, ids) = setup(3);
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
    app.delete_association("c1", &ids[1]).association();
    create(&app, "c1", "sa-3").association();
    assert_over_limit(&create(&app, "c1", "sa-4"), "c1");

    app.delete_association("c1", &ids[0]).association();
    app.delete_association("c1", &ids[2]).association();
    create(&app, "c1", "sa-4").association();
    create(&app, "c1", "sa-5").association();
    assert_over_limit(&create(&app, "c1", "sa-6"), "c1");
    assert_eq!(count(&app, "c1"), 3);
}

#[test]
fn the_limit_is_per_cluster() {
    let (app, _) = setup(3);
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
    app.given_cluster("c2");
    for i in 0..3 {
        create(&app, "c2", &format!("sa-{i}")).association();
    }
    assert_over_limit(&create(&app, "c2", "sa-3"), "c2");
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
    assert_eq!((count(&app, "c1"), count(&app, "c2")), (3, 3));
}

#[test]
fn the_count_is_right_after_a_restart() {
    let (mut app, ids) = setup(3);
    app.restart();
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");

    app.delete_association("c1", &ids[0]).association();
    app.delete_association("c1", &ids[1]).association();
    app.restart();
    create(&app, "c1", "sa-3").association();
    app.restart();
    create(&app, "c1", "sa-4").association();
    assert_over_limit(&create(&app, "c1", "sa-5"), "c1");
    app.restart();
    assert_over_limit(&create(&app, "c1", "sa-5"), "c1");
    assert_eq!(count(&app, "c1"), 3);
}

#[test]
fn creates_refused_for_a_duplicate_service_account_bad_input_or_the_cluster_state_do_not_count() {
    let (app, ids) = setup(2);
    for _ in 0..3 {
        app.create_association("c1", &request("sa-0"))
            .error(409, "ResourceInUseException");
    }
    for bad in [
        json!({ "namespace": "Bad", "serviceAccount": "x", "roleArn": role("r") }),
        json!({ "namespace": "default", "serviceAccount": "x", "roleArn": "arn:aws:iam::111122223333:role/r" }),
        json!({ "namespace": "default", "serviceAccount": "x", "roleArn": role("r"), "policy": "{}" }),
        json!({ "namespace": "default", "serviceAccount": "x", "roleArn": role("r"), "tags": { "aws:x": "y" } }),
    ] {
        app.create_association("c1", &bad)
            .error(400, "InvalidParameterException");
    }
    app.set_cluster_status("c1", "UPDATING").cluster();
    app.set_cluster_status("c1", "FAILED").cluster();
    create(&app, "c1", "sa-x").error(400, "InvalidRequestException");
    app.set_cluster_status("c1", "ACTIVE").cluster();

    // Only 2 exist: the third fits, the fourth does not.
    create(&app, "c1", "sa-2").association();
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
    // A refused delete does not free a place either.
    app.delete_association("c1", "a-0123456789abcdefg")
        .error(404, "ResourceNotFoundException");
    app.delete_association("c1", &ids[0]).association();
    app.delete_association("c1", &ids[0])
        .error(404, "ResourceNotFoundException");
    create(&app, "c1", "sa-3").association();
    assert_over_limit(&create(&app, "c1", "sa-4"), "c1");
}

#[test]
fn a_retried_create_at_the_limit_gets_its_first_answer() {
    let (app, _) = setup(2);
    let mut third = request("sa-2");
    third["clientRequestToken"] = json!(T1);
    let first = app.create_association("c1", &third).association();
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
    assert_eq!(app.create_association("c1", &third).association(), first);
    assert_eq!(count(&app, "c1"), 3);
}

#[test]
fn concurrent_creates_never_pass_the_limit() {
    let app = TestApp::spawn_with_config(LIMIT_3);
    for round in 0..3 {
        let cluster = format!("c{round}");
        app.given_cluster(&cluster);
        let answers: Vec<Answer> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..12)
                .map(|i| {
                    let client = app.client();
                    let cluster = cluster.clone();
                    scope.spawn(move || create(&client, &cluster, &format!("sa-{i}")))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut created = 0;
        for answer in &answers {
            if answer.status == 200 {
                created += 1;
            } else {
                assert_over_limit(answer, &cluster);
            }
        }
        assert_eq!(created, 3, "{cluster}: exactly the limit is created");
        assert_eq!(count(&app, &cluster), 3, "{cluster}");
    }
}

#[test]
fn a_cluster_deleted_and_created_again_starts_from_zero() {
    let (app, _) = setup(3);
    app.delete_cluster("c1").cluster();
    app.given_cluster("c1");
    for i in 0..3 {
        create(&app, "c1", &format!("sa-{i}")).association();
    }
    assert_over_limit(&create(&app, "c1", "sa-3"), "c1");
}

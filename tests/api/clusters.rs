//! CreateCluster, DescribeCluster, ListClusters and DeleteCluster.

use std::collections::BTreeSet;

use serde_json::json;

use crate::helpers::{now_seconds, role, s, ts, TestApp, ACCOUNT, CLOCK_CONTROL};

#[test]
fn a_new_cluster_answers_creating_and_then_reads_as_active() {
    let app = TestApp::spawn();
    let before = now_seconds();
    let created = app
        .create_cluster_with(&json!({
            "name": "prod",
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": { "subnetIds": ["subnet-1"] },
            "version": "1.31",
            "tags": { "team": "platform" },
        }))
        .cluster();
    assert_eq!(created["status"], "CREATING");
    assert_eq!(created["name"], "prod");
    assert_eq!(
        created["arn"],
        format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod")
    );
    assert_eq!(created["roleArn"], role("eks-cluster-role"));
    assert_eq!(created["version"], "1.31");
    assert_eq!(created["tags"], json!({ "team": "platform" }));
    let created_at = ts(&created, "createdAt");
    assert!(
        (created_at - before).abs() < 300.0,
        "createdAt {created_at}"
    );

    let described = app.describe_cluster("prod").cluster();
    assert_eq!(described["status"], "ACTIVE");
    assert_eq!(described["createdAt"], created["createdAt"]);
    assert_eq!(described["arn"], created["arn"]);
    // ACTIVE means association writes work.
    app.given_association("prod", "default", "app", &role("r"));
}

#[test]
fn with_an_activation_delay_a_new_cluster_stays_creating_and_refuses_association_writes_until_it_passes(
) {
    let app = TestApp::spawn_with_config(&format!(
        "[clusters]\nactivation_delay_ms = 60000\n{CLOCK_CONTROL}"
    ));
    assert_eq!(app.create_cluster("slow").cluster()["status"], "CREATING");
    assert_eq!(app.describe_cluster("slow").cluster()["status"], "CREATING");
    let answer = app.create_association(
        "slow",
        &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r") }),
    );
    let message = answer.error(400, "InvalidRequestException");
    assert!(
        message.contains("slow") && message.contains("CREATING"),
        "{message}"
    );
    // Still CREATING well before the delay has passed...
    app.advance_clock(50);
    assert_eq!(app.describe_cluster("slow").cluster()["status"], "CREATING");
    // ... ACTIVE, and taking association writes, once it has.
    app.advance_clock(11);
    assert_eq!(app.describe_cluster("slow").cluster()["status"], "ACTIVE");
    app.given_association("slow", "default", "app", &role("r"));
    // The admin route activates a cluster at once.
    assert_eq!(app.create_cluster("fresh").cluster()["status"], "CREATING");
    app.set_cluster_status("fresh", "ACTIVE").cluster();
    app.given_association("fresh", "default", "app", &role("r"));
}

#[test]
fn a_duplicate_cluster_name_is_409_and_a_retry_with_the_same_token_is_not() {
    let app = TestApp::spawn();
    let request = json!({
        "name": "prod",
        "roleArn": role("eks"),
        "resourcesVpcConfig": {},
        "clientRequestToken": "cluster-token-1",
    });
    let first = app.create_cluster_with(&request).cluster();
    // The SDK's retry of the same call gets the same answer...
    assert_eq!(app.create_cluster_with(&request).cluster(), first);
    // ... a new call for the same name does not.
    let answer = app.create_cluster("prod");
    let message = answer.error(409, "ResourceInUseException");
    assert!(message.contains("prod"), "{message}");
    assert_eq!(answer.error_cluster(), Some("prod"));
    assert_eq!(
        app.describe_cluster("prod").cluster()["roleArn"],
        role("eks")
    );
}

#[test]
fn list_clusters_pages_visit_every_cluster_exactly_once() {
    let app = TestApp::spawn();
    let names: BTreeSet<String> = [
        "a", "a-1", "a_1", "b", "B", "prod", "prod-2", "z9", "0zero", "m",
    ]
    .iter()
    .map(|n| n.to_string())
    .collect();
    for name in &names {
        app.create_cluster(name).cluster();
    }
    let everything = app.list_clusters("").ok().clone();
    assert!(everything.get("nextToken").is_none(), "{everything}");
    let all: BTreeSet<String> = everything["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, names);

    for page_size in [1, 2, 3, 7, 10, 100] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..=names.len() {
            let query = match &token {
                Some(t) => format!("?maxResults={page_size}&nextToken={t}"),
                None => format!("?maxResults={page_size}"),
            };
            let page = app.list_clusters(&query).ok().clone();
            let items = page["clusters"].as_array().unwrap();
            assert!(items.len() <= page_size, "{page}");
            seen.extend(items.iter().map(|v| v.as_str().unwrap().to_owned()));
            token = page["nextToken"].as_str().map(str::to_owned);
            if token.is_none() {
                break;
            }
            assert!(!items.is_empty(), "a page with a nextToken but no clusters");
        }
        assert!(token.is_none(), "page size {page_size}: pages never ended");
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "page size {page_size}: {seen:?}");
        assert_eq!(unique, names, "page size {page_size}");
    }
}

#[test]
fn list_clusters_refuses_max_results_outside_1_to_100_and_a_foreign_next_token() {
    let app = TestApp::spawn();
    app.create_cluster("c1").cluster();
    for query in [
        "?maxResults=0",
        "?maxResults=101",
        "?maxResults=-1",
        "?maxResults=ten",
    ] {
        let message = app
            .list_clusters(query)
            .error(400, "InvalidParameterException");
        assert!(message.contains("maxResults"), "{query}: {message}");
    }
    for token in ["garbage", "zz", "abc", "2d2d", "%E2%82%AC"] {
        let message = app
            .list_clusters(&format!("?nextToken={token}"))
            .error(400, "InvalidParameterException");
        assert!(message.contains("nextToken"), "{token}: {message}");
    }
    // Not even UTF-8.
    app.list_clusters("?nextToken=%FF%FE")
        .error(400, "InvalidParameterException");
    for query in ["?maxResults=1", "?maxResults=100"] {
        assert_eq!(app.list_clusters(query).ok()["clusters"], json!(["c1"]));
    }
}

#[test]
fn delete_cluster_answers_deleting_and_removes_its_associations() {
    let mut app = TestApp::spawn();
    app.given_cluster("doomed");
    app.given_cluster("keeper");
    let a = app.given_association("doomed", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();
    let token = "create-token-1";
    let tokened = app
        .create_association(
            "doomed",
            &json!({
                "namespace": "default", "serviceAccount": "other", "roleArn": role("r1"),
                "clientRequestToken": token,
            }),
        )
        .association();
    let kept = app.given_association("keeper", "default", "app", &role("r1"));

    let deleted = app.delete_cluster("doomed").cluster();
    assert_eq!(deleted["status"], "DELETING");
    assert_eq!(deleted["name"], "doomed");

    let check_gone = |app: &TestApp| {
        app.describe_cluster("doomed")
            .error(404, "ResourceNotFoundException");
        let message = app
            .describe_association("doomed", &id)
            .error(404, "ResourceNotFoundException");
        assert!(message.contains("doomed"), "{message}");
        app.update_association("doomed", &id, &json!({ "roleArn": role("r2") }))
            .error(404, "ResourceNotFoundException");
        app.delete_cluster("doomed")
            .error(404, "ResourceNotFoundException");
        assert_eq!(app.list_clusters("").ok()["clusters"], json!(["keeper"]));
        let kept_id = s(&kept, "associationId");
        assert_eq!(
            app.describe_association("keeper", kept_id).association(),
            kept
        );
    };
    check_gone(&app);
    app.restart();
    check_gone(&app);

    // The name and its service accounts are free again; the old association
    // does not come back with the new cluster, nor its token.
    app.given_cluster("doomed");
    app.describe_association("doomed", &id)
        .error(404, "ResourceNotFoundException");
    let again = app.given_association("doomed", "default", "app", &role("r3"));
    assert_ne!(again["associationId"], a["associationId"]);
    let retried = app
        .create_association(
            "doomed",
            &json!({
                "namespace": "default", "serviceAccount": "other", "roleArn": role("r1"),
                "clientRequestToken": token,
            }),
        )
        .association();
    assert_ne!(retried["associationId"], tokened["associationId"]);
}

#[test]
fn a_deleted_cluster_can_be_created_again_with_the_token_of_its_first_creation() {
    let app = TestApp::spawn();
    let request = |version: &str| {
        json!({
            "name": "c1", "roleArn": role("eks"), "resourcesVpcConfig": {},
            "version": version, "clientRequestToken": "same-token",
        })
    };
    let first = app.create_cluster_with(&request("1.30")).cluster();
    app.delete_cluster("c1").cluster();
    // The token went with the cluster: this is a new request, not a reuse.
    let second = app.create_cluster_with(&request("1.31")).cluster();
    assert_eq!(second["status"], "CREATING");
    assert_eq!(second["version"], "1.31");
    assert_eq!(first["version"], "1.30");
    assert_eq!(app.describe_cluster("c1").cluster()["version"], "1.31");
}

#[test]
fn describe_and_delete_of_a_name_no_cluster_can_have_are_not_found_as_their_error_lists_say() {
    let app = TestApp::spawn();
    for name in ["a.b", "-x", &"n".repeat(101)] {
        let message = app
            .describe_cluster(name)
            .error(404, "ResourceNotFoundException");
        assert!(message.contains("No cluster found for name"), "{message}");
        app.delete_cluster(name)
            .error(404, "ResourceNotFoundException");
    }
}

#[test]
fn resources_vpc_config_members_of_the_wrong_type_are_refused_naming_them() {
    let app = TestApp::spawn();
    for (config, member) in [
        (
            json!({"subnetIds": "subnet-1"}),
            "resourcesVpcConfig.subnetIds",
        ),
        (
            json!({"securityGroupIds": [1]}),
            "resourcesVpcConfig.securityGroupIds",
        ),
        (
            json!({"endpointPublicAccess": "yes"}),
            "resourcesVpcConfig.endpointPublicAccess",
        ),
        (
            json!({"controlPlaneEgressMode": "OPEN"}),
            "resourcesVpcConfig.controlPlaneEgressMode",
        ),
    ] {
        let message = app
            .create_cluster_with(
                &json!({"name": "c1", "roleArn": role("r"), "resourcesVpcConfig": config}),
            )
            .error(400, "InvalidParameterException");
        assert!(message.contains(member), "{message}");
    }
    app.describe_cluster("c1")
        .error(404, "ResourceNotFoundException");
    let full = json!({"subnetIds": ["subnet-1"], "securityGroupIds": [], "endpointPublicAccess": true,
                      "endpointPrivateAccess": false, "publicAccessCidrs": ["0.0.0.0/0"],
                      "controlPlaneEgressMode": "AWS_MANAGED", "aNewerMember": 1});
    app.create_cluster_with(
        &json!({"name": "c1", "roleArn": role("r"), "resourcesVpcConfig": full}),
    )
    .cluster();
}

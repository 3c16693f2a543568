//! One test per validation rule, through HTTP: each refusal has the EKS
//! error type and a message naming the member and the rule, and stores
//! nothing (checked through the API, then in the store itself).

use serde_json::{json, Value};

use crate::helpers::{cluster_arn, encode, query, role, s, Answer, StoredCounts, TestApp, ACCOUNT};

const ID_OF_NOTHING: &str = "a-0123456789abcdefg";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[]}"#;

/// Everything a client can read: every cluster, every association, every tag set.
#[derive(Debug, PartialEq)]
struct Snapshot {
    clusters: Vec<Value>,
    associations: Vec<Value>,
    tags: Vec<Value>,
}

fn snapshot(app: &TestApp) -> Snapshot {
    let names = app.list_clusters("").ok()["clusters"].clone();
    let names: Vec<&str> = names
        .as_array()
        .expect("clusters")
        .iter()
        .map(|n| n.as_str().expect("a name"))
        .collect();
    let mut snapshot = Snapshot {
        clusters: Vec::new(),
        associations: Vec::new(),
        tags: Vec::new(),
    };
    for name in names {
        snapshot
            .clusters
            .push(app.describe_cluster(name).cluster_without_issuer());
        snapshot
            .tags
            .push(app.list_tags(&cluster_arn(name)).ok().clone());
        for summary in app.list_all_associations(name, &[]) {
            let a = app
                .describe_association(name, s(&summary, "associationId"))
                .association();
            snapshot
                .tags
                .push(app.list_tags(s(&a, "associationArn")).ok().clone());
            snapshot.associations.push(a);
        }
    }
    snapshot
}

/// A server with cluster "c1" and one association in it, every member set.
struct Fixture {
    app: TestApp,
    /// The association, as Create answered it.
    a: Value,
    before: Snapshot,
}

impl Fixture {
    fn new() -> Fixture {
        let app = TestApp::spawn();
        app.create_cluster_with(&json!({
            "name": "c1",
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": {},
            "tags": { "owner": "platform" },
        }))
        .cluster();
        let a = app
            .create_association(
                "c1",
                &json!({
                    "namespace": "default",
                    "serviceAccount": "app",
                    "roleArn": role("r1"),
                    "tags": { "team": "a" },
                    "disableSessionTags": true,
                    "targetRoleArn": "arn:aws:iam::111122223333:role/target",
                    "policy": POLICY,
                }),
            )
            .association();
        let before = snapshot(&app);
        Fixture { app, a, before }
    }

    fn id(&self) -> String {
        s(&self.a, "associationId").to_owned()
    }

    /// A Create body for a new service account, with `overrides` (a null
    /// override removes the member) and a clientRequestToken, so that a
    /// token stored by mistake shows in the store's counts.
    fn create_body(&self, overrides: Value) -> Value {
        let mut body = json!({
            "namespace": "ns-new",
            "serviceAccount": "sa-new",
            "roleArn": role("r"),
            "clientRequestToken": "f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e01",
        });
        for (k, v) in overrides.as_object().expect("an object") {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    }

    fn create(&self, overrides: Value) -> Answer {
        self.app
            .create_association("c1", &self.create_body(overrides))
    }

    /// An Update of the fixture's association with a clientRequestToken.
    fn update(&self, members: Value) -> Answer {
        let mut body = json!({ "clientRequestToken": "f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e02" });
        for (k, v) in members.as_object().expect("an object") {
            body[k] = v.clone();
        }
        self.app.update_association("c1", &self.id(), &body)
    }

    /// CreateCluster of a new cluster with `overrides` and a clientRequestToken.
    fn create_cluster(&self, overrides: Value) -> Answer {
        let mut body = json!({
            "name": "c-new",
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": {},
            "clientRequestToken": "f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e03",
        });
        for (k, v) in overrides.as_object().expect("an object") {
            body[k] = v.clone();
        }
        self.app.create_cluster_with(&body)
    }

    /// Nothing changed: the same answers through the API, and in the store
    /// exactly the fixture's records and no token.
    #[track_caller]
    fn assert_nothing_stored(&mut self) {
        assert_eq!(
            snapshot(&self.app),
            self.before,
            "a refused request changed what clients read"
        );
        // A durable write that changes nothing, so that anything a refused
        // request wrote would be on disk too.
        self.app
            .untag_resource(&cluster_arn("c1"), &["witness"])
            .ok();
        let counts = self.app.stored_counts();
        assert_eq!(
            counts,
            StoredCounts {
                clusters: 1,
                associations: 1,
                index: 1,
                tokens: 0,
            },
            "a refused request left records or tokens in the store"
        );
        assert_eq!(snapshot(&self.app), self.before, "after a restart");
    }
}

/// The answer must be a 400 of `error_type` whose message names every one of
/// `words` (the member and the rule).
#[track_caller]
fn refused(answer: &Answer, error_type: &str, words: &[&str], what: &str) {
    let message = answer.error(400, error_type);
    for word in words {
        assert!(
            message.contains(word),
            "{what}: the message must contain {word:?}: {message}"
        );
    }
}

#[test]
fn cluster_names_follow_the_models_pattern_in_create_cluster_and_in_every_path_label() {
    let mut f = Fixture::new();
    let app = &f.app;
    let id = f.id();
    let long = "c".repeat(101);
    let bad = ["", &long, "-c1", "_c1", "c.1", "c 1", "pröd", "c/1", "c:1"];
    for name in bad {
        let what = format!("cluster name {name:?}");
        refused(
            &f.create_cluster(json!({ "name": name })),
            "InvalidParameterException",
            &["name", "100"],
            &what,
        );
        let label = encode(name);
        let body = f.create_body(json!({}));
        let answers = [
            ("create", app.create_association(&label, &body)),
            ("list", app.list_associations(&label, "")),
            ("describe", app.describe_association(&label, &id)),
            (
                "update",
                app.update_association(&label, &id, &json!({ "roleArn": role("r2") })),
            ),
            ("delete", app.delete_association(&label, &id)),
        ];
        for (op, answer) in &answers {
            refused(
                answer,
                "InvalidParameterException",
                &["clusterName", "100"],
                &format!("{op} with {what}"),
            );
        }
        if !name.is_empty() {
            // An empty label would make these paths other routes.
            refused(
                &app.set_cluster_status(&label, "ACTIVE"),
                "InvalidParameterException",
                &["name", "100"],
                &format!("set status with {what}"),
            );
            // DescribeCluster and DeleteCluster have no InvalidParameterException
            // in their error lists: such a cluster is simply not found.
            for (op, answer) in [
                ("describe cluster", app.describe_cluster(&label)),
                ("delete cluster", app.delete_cluster(&label)),
            ] {
                let message = answer.error(404, "ResourceNotFoundException");
                assert!(
                    message.contains("No cluster found for name"),
                    "{op} with {what}: {message}"
                );
            }
        }
    }
    f.assert_nothing_stored();

    for name in ["c".repeat(100), "9lives".into(), "A_b-C".into(), "x".into()] {
        let created = f.app.given_cluster(&name);
        assert_eq!(created["name"], name.as_str());
        f.app.given_association(&name, "default", "app", &role("r"));
    }
}

#[test]
fn namespaces_must_be_kubernetes_dns_labels_of_at_most_63_characters() {
    let mut f = Fixture::new();
    let long = "n".repeat(64);
    for ns in [
        "", "Default", "ns-", "-ns", "a.b", "ns_1", "ns 1", "né", &long,
    ] {
        refused(
            &f.create(json!({ "namespace": ns })),
            "InvalidParameterException",
            &["namespace", "63"],
            &format!("namespace {ns:?}"),
        );
    }
    f.assert_nothing_stored();

    for (i, ns) in [
        "n".repeat(63),
        "a".into(),
        "0".into(),
        "a-b".into(),
        "1-2-3".into(),
    ]
    .iter()
    .enumerate()
    {
        let created = f
            .app
            .given_association("c1", ns, &format!("sa-{i}"), &role("r"));
        assert_eq!(created["namespace"], ns.as_str());
    }
}

#[test]
fn service_accounts_must_be_kubernetes_dns_subdomains_of_at_most_253_characters() {
    let mut f = Fixture::new();
    let long = format!("{}.{}", "a".repeat(126), "b".repeat(127));
    assert_eq!(long.len(), 254);
    for sa in [
        "", "My-SA", "a..b", ".a", "a.", "-a", "a-", "a.-b", "my_sa", "a b", "sé", &long,
    ] {
        refused(
            &f.create(json!({ "serviceAccount": sa })),
            "InvalidParameterException",
            &["serviceAccount", "253"],
            &format!("service account {sa:?}"),
        );
    }
    f.assert_nothing_stored();

    let longest = format!("{}.{}", "a".repeat(126), "b".repeat(126));
    for sa in [longest.as_str(), "a", "my.app-sa", "0.1.2", "default"] {
        let created = f.app.given_association("c1", "ns-ok", sa, &role("r"));
        assert_eq!(created["serviceAccount"], sa);
    }
}

#[test]
fn role_arns_must_be_iam_roles_of_the_servers_partition_and_account_on_create_update_and_create_cluster(
) {
    let mut f = Fixture::new();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "another account",
            "arn:aws:iam::111122223333:role/r".into(),
            vec!["account", ACCOUNT],
        ),
        (
            "another partition",
            format!("arn:aws-cn:iam::{ACCOUNT}:role/r"),
            vec!["partition", "aws-cn"],
        ),
        (
            "the STS service",
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/r/s"),
            vec!["iam"],
        ),
        ("the S3 service", "arn:aws:s3:::bucket".into(), vec!["iam"]),
        (
            "a user",
            format!("arn:aws:iam::{ACCOUNT}:user/r"),
            vec!["role/"],
        ),
        (
            "a group",
            format!("arn:aws:iam::{ACCOUNT}:group/r"),
            vec!["role/"],
        ),
        ("a 65-character name", role(&"n".repeat(65)), vec!["64"]),
        (
            "a 513-character path",
            role(&format!("{}/n", "p".repeat(511))),
            vec!["512"],
        ),
        ("an empty name", role(""), vec!["64"]),
        ("an empty path segment", role("a//n"), vec!["//"]),
        (
            "a region",
            format!("arn:aws:iam:us-east-1:{ACCOUNT}:role/r"),
            vec!["region"],
        ),
        (
            "an 11-digit account",
            "arn:aws:iam::12345678901:role/r".into(),
            vec!["12 digits"],
        ),
        ("not an ARN", "my-role".into(), vec!["ARN"]),
        ("empty", String::new(), vec!["ARN"]),
    ];
    for (what, arn, rule) in &cases {
        let mut words = vec!["roleArn"];
        words.extend(rule);
        refused(
            &f.create(json!({ "roleArn": arn })),
            "InvalidParameterException",
            &words,
            &format!("create: {what}"),
        );
        refused(
            &f.update(json!({ "roleArn": arn })),
            "InvalidParameterException",
            &words,
            &format!("update: {what}"),
        );
        refused(
            &f.create_cluster(json!({ "roleArn": arn })),
            "InvalidParameterException",
            &words,
            &format!("create cluster: {what}"),
        );
    }
    f.assert_nothing_stored();

    let name64 = role(&"n".repeat(64));
    let path512 = role(&format!("{}/n", "p".repeat(510)));
    for (i, arn) in [name64, path512, role("a/b/c/x+=,.@_-")].iter().enumerate() {
        let created = f
            .app
            .given_association("c1", "ns-ok", &format!("sa-{i}"), arn);
        assert_eq!(created["roleArn"], arn.as_str());
        let updated = f
            .app
            .update_association("c1", &f.id(), &json!({ "roleArn": arn }))
            .association();
        assert_eq!(updated["roleArn"], arn.as_str());
        f.app
            .create_cluster_with(
                &json!({ "name": format!("ok-{i}"), "roleArn": arn, "resourcesVpcConfig": {} }),
            )
            .cluster();
    }
}

#[test]
fn target_role_arns_must_be_iam_roles_of_the_servers_partition_in_any_account() {
    let mut f = Fixture::new();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "another partition",
            "arn:aws-cn:iam::111122223333:role/t".into(),
            vec!["partition"],
        ),
        (
            "the GovCloud partition",
            "arn:aws-us-gov:iam::111122223333:role/t".into(),
            vec!["partition"],
        ),
        (
            "a user",
            "arn:aws:iam::111122223333:user/t".into(),
            vec!["role/"],
        ),
        (
            "the STS service",
            "arn:aws:sts::111122223333:assumed-role/t/s".into(),
            vec!["iam"],
        ),
        (
            "a 65-character name",
            format!("arn:aws:iam::111122223333:role/{}", "n".repeat(65)),
            vec!["64"],
        ),
        (
            "a 513-character path",
            format!("arn:aws:iam::111122223333:role/{}/n", "p".repeat(511)),
            vec!["512"],
        ),
        ("not an ARN", "target".into(), vec!["ARN"]),
    ];
    for (what, arn, rule) in &cases {
        let mut words = vec!["targetRoleArn"];
        words.extend(rule);
        refused(
            &f.create(json!({ "targetRoleArn": arn })),
            "InvalidParameterException",
            &words,
            &format!("create: {what}"),
        );
        refused(
            &f.update(json!({ "targetRoleArn": arn })),
            "InvalidParameterException",
            &words,
            &format!("update: {what}"),
        );
    }
    f.assert_nothing_stored();

    for arn in [
        "arn:aws:iam::999988887777:role/t".to_owned(),
        format!("arn:aws:iam::111122223333:role/{}", "n".repeat(64)),
        role("same-account"),
    ] {
        let updated = f
            .app
            .update_association("c1", &f.id(), &json!({ "targetRoleArn": arn }))
            .association();
        assert_eq!(updated["targetRoleArn"], arn.as_str());
    }
}

#[test]
fn a_policy_must_be_a_json_object_of_at_most_2048_characters_and_needs_session_tags_disabled() {
    let mut f = Fixture::new();
    let over = format!(r#"{{"k":"{}"}}"#, "x".repeat(2041));
    assert_eq!(over.chars().count(), 2049);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "an array",
            json!({ "policy": "[]", "disableSessionTags": true }),
            vec!["policy", "JSON object"],
        ),
        (
            "invalid JSON",
            json!({ "policy": "{\"Version\":", "disableSessionTags": true }),
            vec!["policy", "JSON object"],
        ),
        (
            "a number",
            json!({ "policy": "42", "disableSessionTags": true }),
            vec!["policy", "JSON object"],
        ),
        (
            "2049 characters",
            json!({ "policy": over, "disableSessionTags": true }),
            vec!["policy", "2048"],
        ),
        (
            "session tags on",
            json!({ "policy": POLICY, "disableSessionTags": false }),
            vec!["policy", "disableSessionTags"],
        ),
        (
            "a policy not a string",
            json!({ "policy": { "Version": "2012-10-17" }, "disableSessionTags": true }),
            vec!["policy", "string"],
        ),
    ];
    for (what, members, words) in &cases {
        refused(
            &f.create(members.clone()),
            "InvalidParameterException",
            words,
            &format!("create: {what}"),
        );
        refused(
            &f.update(members.clone()),
            "InvalidParameterException",
            words,
            &format!("update: {what}"),
        );
    }
    // Session tags back on while the stored policy stays.
    refused(
        &f.update(json!({ "disableSessionTags": false })),
        "InvalidParameterException",
        &["policy", "disableSessionTags"],
        "update: session tags on under the stored policy",
    );
    refused(
        &f.create(json!({ "policy": POLICY })),
        "InvalidParameterException",
        &["policy", "disableSessionTags"],
        "create: no disableSessionTags",
    );
    f.assert_nothing_stored();

    let at_limit = format!(r#"{{"k":"{}"}}"#, "x".repeat(2040));
    let updated = f
        .app
        .update_association("c1", &f.id(), &json!({ "policy": at_limit }))
        .association();
    assert_eq!(updated["policy"], at_limit.as_str());
}

#[test]
fn tags_have_at_most_50_entries_keys_of_1_to_128_values_of_0_to_256_characters_and_no_aws_prefix() {
    let mut f = Fixture::new();
    let fifty_one: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("51 tags", Value::Object(fifty_one), "50"),
        ("an empty key", json!({ "": "v" }), "128"),
        (
            "a 129-character key",
            json!({ "k".repeat(129): "v" }),
            "128",
        ),
        (
            "a 257-character value",
            json!({ "k": "v".repeat(257) }),
            "256",
        ),
        ("an aws: key", json!({ "aws:owner": "v" }), "aws:"),
        ("an AWS: key", json!({ "AWS:owner": "v" }), "aws:"),
    ];
    let assoc_arn = s(&f.a, "associationArn").to_owned();
    for (what, tags, rule) in &cases {
        refused(
            &f.create(json!({ "tags": tags })),
            "InvalidParameterException",
            &["tags", rule],
            &format!("create: {what}"),
        );
        refused(
            &f.create_cluster(json!({ "tags": tags })),
            "InvalidParameterException",
            &["tags", rule],
            &format!("create cluster: {what}"),
        );
        for arn in [assoc_arn.as_str(), &cluster_arn("c1")] {
            refused(
                &f.app.tag_resource(arn, tags),
                "BadRequestException",
                &["tags", rule],
                &format!("tag resource {arn}: {what}"),
            );
        }
    }
    f.assert_nothing_stored();
}

#[test]
fn client_request_tokens_have_1_to_512_characters() {
    let mut f = Fixture::new();
    let long = "t".repeat(513);
    for token in ["", long.as_str()] {
        let what = format!("a token of {} characters", token.len());
        let member = json!({ "clientRequestToken": token });
        let words = ["clientRequestToken", "512"];
        refused(
            &f.create(member.clone()),
            "InvalidParameterException",
            &words,
            &format!("create: {what}"),
        );
        let mut update = member.clone();
        update["roleArn"] = json!(role("r2"));
        refused(
            &f.update(update),
            "InvalidParameterException",
            &words,
            &format!("update: {what}"),
        );
        refused(
            &f.create_cluster(member),
            "InvalidParameterException",
            &words,
            &format!("create cluster: {what}"),
        );
    }
    f.assert_nothing_stored();

    let longest = "t".repeat(512);
    f.create(json!({ "clientRequestToken": longest }))
        .association();
    f.update(json!({ "clientRequestToken": longest, "roleArn": role("r2") }))
        .association();
    f.create_cluster(json!({ "clientRequestToken": longest }))
        .cluster();
}

#[test]
fn association_ids_are_a_dash_and_17_lowercase_letters_or_digits() {
    let mut f = Fixture::new();
    let app = &f.app;
    let wrong_length = ["a-123", "a-0123456789abcdefgh", "x", "a-0123456789abcdef"];
    let wrong_alphabet = [
        "a-0123456789ABCDEFG",
        "b-0123456789abcdefg",
        "a_0123456789abcdefg",
        "a-0123456789abcdef-",
        "a-0123456789abcdef%20",
    ];
    for id in wrong_length.iter().chain(&wrong_alphabet) {
        for (op, answer) in [
            ("describe", app.describe_association("c1", id)),
            (
                "update",
                app.update_association("c1", id, &json!({ "roleArn": role("r2") })),
            ),
            ("delete", app.delete_association("c1", id)),
        ] {
            let what = format!("{op} {id}");
            if wrong_length.contains(id) {
                refused(
                    &answer,
                    "InvalidParameterException",
                    &["associationId", "19 characters"],
                    &what,
                );
            } else {
                refused(
                    &answer,
                    "InvalidParameterException",
                    &["associationId", "17 lowercase letters or digits"],
                    &what,
                );
            }
        }
    }
    f.assert_nothing_stored();
    f.app
        .describe_association("c1", ID_OF_NOTHING)
        .error(404, "ResourceNotFoundException");
}

#[test]
fn max_results_is_an_integer_from_1_to_100_for_both_listings() {
    let mut f = Fixture::new();
    for bad in ["0", "101", "-1", "x", "", "1.5", "100000000000000000000"] {
        let q = query(&[("maxResults", bad)]);
        for (op, answer) in [
            (
                "ListPodIdentityAssociations",
                f.app.list_associations("c1", &q),
            ),
            ("ListClusters", f.app.list_clusters(&q)),
        ] {
            refused(
                &answer,
                "InvalidParameterException",
                &["maxResults", "1", "100"],
                &format!("{op} maxResults={bad:?}"),
            );
        }
    }
    f.assert_nothing_stored();
    for good in ["1", "100"] {
        let q = query(&[("maxResults", good)]);
        assert_eq!(
            f.app.list_associations("c1", &q).ok()["associations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(f.app.list_clusters(&q).ok()["clusters"], json!(["c1"]));
    }
}

#[test]
fn the_admin_route_takes_only_the_models_cluster_statuses() {
    let mut f = Fixture::new();
    let path = "/admin/v1/clusters/c1/status";
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "lower case",
            json!({ "status": "active" }),
            vec!["status", "ACTIVE", "PENDING"],
        ),
        (
            "an unknown status",
            json!({ "status": "RUNNING" }),
            vec!["status", "ACTIVE", "PENDING"],
        ),
        ("empty", json!({ "status": "" }), vec!["status", "ACTIVE"]),
        (
            "padded",
            json!({ "status": " ACTIVE" }),
            vec!["status", "ACTIVE"],
        ),
        ("a number", json!({ "status": 1 }), vec!["status", "string"]),
        ("missing", json!({}), vec!["status", "required"]),
        (
            "null",
            json!({ "status": null }),
            vec!["status", "required"],
        ),
    ];
    for (what, body, words) in &cases {
        refused(
            &f.app.send_json("PUT", path, body),
            "InvalidParameterException",
            words,
            what,
        );
    }
    f.assert_nothing_stored();
    for status in crate::helpers::ALL_STATUSES {
        assert_eq!(
            f.app.set_cluster_status("c1", status).cluster()["status"],
            status
        );
    }
}

#[test]
fn list_filters_must_be_valid_namespace_and_service_account_names() {
    let mut f = Fixture::new();
    let long_ns = "n".repeat(64);
    let long_sa = format!("{}.{}", "a".repeat(126), "b".repeat(127));
    for ns in ["Default", "a.b", "-ns", long_ns.as_str()] {
        refused(
            &f.app.list_associations("c1", &query(&[("namespace", ns)])),
            "InvalidParameterException",
            &["namespace", "63"],
            &format!("namespace filter {ns:?}"),
        );
        refused(
            &f.app.list_associations(
                "c1",
                &query(&[("namespace", ns), ("serviceAccount", "app")]),
            ),
            "InvalidParameterException",
            &["namespace", "63"],
            &format!("namespace filter {ns:?} with a service account filter"),
        );
    }
    for sa in ["App", "a..b", ".a", long_sa.as_str()] {
        refused(
            &f.app
                .list_associations("c1", &query(&[("serviceAccount", sa)])),
            "InvalidParameterException",
            &["serviceAccount", "253"],
            &format!("service account filter {sa:?}"),
        );
    }
    f.assert_nothing_stored();
    let listed = f
        .app
        .list_all_associations("c1", &[("namespace", "default"), ("serviceAccount", "app")]);
    assert_eq!(listed.len(), 1);
}

#[test]
fn every_error_of_a_request_about_a_cluster_names_the_cluster() {
    let app = TestApp::spawn();
    app.given_cluster("q");
    let bad_namespace = app.create_association(
        "q",
        &json!({"namespace": "BAD", "serviceAccount": "sa", "roleArn": role("r")}),
    );
    bad_namespace.error(400, "InvalidParameterException");
    assert_eq!(bad_namespace.error_cluster(), Some("q"));
    let bad_id = app.describe_association("q", "a-1");
    bad_id.error(400, "InvalidParameterException");
    assert_eq!(bad_id.error_cluster(), Some("q"));
    let bad_page = app.list_associations("q", "?maxResults=0");
    bad_page.error(400, "InvalidParameterException");
    assert_eq!(bad_page.error_cluster(), Some("q"));
}

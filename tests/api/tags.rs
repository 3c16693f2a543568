//! TagResource, UntagResource and ListTagsForResource on association and
//! cluster ARNs, and `tags` on Create: merging, the tag rules, the Tag APIs'
//! own error types, and tags going with their resource.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::helpers::{cluster_arn, encode, role, s, Answer, TestApp, ACCOUNT};

const WELL_FORMED_UNKNOWN_ID: &str = "a-0123456789abcdefg";

/// The tags of a resource, by ListTagsForResource.
#[track_caller]
fn tags_of(app: &TestApp, arn: &str) -> Value {
    let answer = app.list_tags(arn);
    let body = answer.ok();
    let members: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(members, ["tags"], "{}", answer.text);
    body["tags"].clone()
}

/// An error of a Tag API: the type, and a body with only `message` (the Tag
/// APIs' error shapes have no `clusterName`).
#[track_caller]
fn tag_api_error(answer: &Answer, status: u16, error_type: &str, what: &str) -> String {
    let message = answer.error(status, error_type);
    let members: Vec<&String> = answer
        .body
        .as_object()
        .expect("an object")
        .keys()
        .filter(|k| *k != "__type")
        .collect();
    assert_eq!(
        members,
        ["message"],
        "{what}: a Tag API error carries only a message: {}",
        answer.text
    );
    message
}

/// `n` tags `k0..k{n-1}`, each with `value`.
fn numbered_tags(range: std::ops::Range<usize>, value: &str) -> Value {
    Value::Object(
        range
            .map(|i| (format!("k{i}"), Value::String(value.to_owned())))
            .collect::<Map<_, _>>(),
    )
}

fn create_body(sa: &str, tags: Value) -> Value {
    json!({
        "namespace": "default",
        "serviceAccount": sa,
        "roleArn": role("r"),
        "tags": tags,
    })
}

/// A cluster "c1" with tags, and an association in it with tags.
fn setup() -> (TestApp, Value) {
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
            &create_body("app", json!({ "team": "payments", "empty": "" })),
        )
        .association();
    (app, a)
}

#[test]
fn tags_given_at_create_show_in_describe_and_in_list_tags_for_resource_of_associations_and_clusters(
) {
    let (app, a) = setup();
    assert_eq!(a["tags"], json!({ "team": "payments", "empty": "" }));
    let arn = s(&a, "associationArn");
    assert_eq!(
        app.describe_association("c1", s(&a, "associationId"))
            .association()["tags"],
        json!({ "team": "payments", "empty": "" })
    );
    assert_eq!(
        tags_of(&app, arn),
        json!({ "team": "payments", "empty": "" })
    );

    let cluster = app.describe_cluster("c1").cluster();
    assert_eq!(cluster["tags"], json!({ "owner": "platform" }));
    assert_eq!(s(&cluster, "arn"), cluster_arn("c1"));
    assert_eq!(
        tags_of(&app, &cluster_arn("c1")),
        json!({ "owner": "platform" })
    );

    // Untagged resources list an empty map.
    let plain = app.given_association("c1", "default", "plain", &role("r"));
    assert_eq!(plain["tags"], json!({}));
    assert_eq!(tags_of(&app, s(&plain, "associationArn")), json!({}));
    app.given_cluster("c2");
    assert_eq!(tags_of(&app, &cluster_arn("c2")), json!({}));
}

#[test]
fn tag_resource_merges_new_keys_overwrites_existing_values_answers_an_empty_object_and_survives_a_restart(
) {
    let (mut app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let arn = s(&a, "associationArn").to_owned();

    let answer = app.tag_resource(&arn, &json!({ "team": "billing", "env": "prod" }));
    assert_eq!(answer.ok(), &json!({}), "TagResource answers {{}}");
    let expected = json!({ "team": "billing", "env": "prod", "empty": "" });
    assert_eq!(tags_of(&app, &arn), expected);
    assert_eq!(
        app.describe_association("c1", &id).association()["tags"],
        expected,
        "Describe shows the same tags"
    );

    let answer = app.tag_resource(&cluster_arn("c1"), &json!({ "cost-center": "42" }));
    assert_eq!(answer.ok(), &json!({}));
    let cluster_tags = json!({ "owner": "platform", "cost-center": "42" });
    assert_eq!(tags_of(&app, &cluster_arn("c1")), cluster_tags);
    assert_eq!(app.describe_cluster("c1").cluster()["tags"], cluster_tags);

    // Tagging one resource leaves the others as they were.
    assert_eq!(
        tags_of(&app, &arn),
        expected,
        "cluster tags do not propagate"
    );

    app.restart();
    assert_eq!(tags_of(&app, &arn), expected);
    assert_eq!(tags_of(&app, &cluster_arn("c1")), cluster_tags);
}

#[test]
fn untag_resource_removes_the_named_keys_ignores_absent_ones_and_answers_an_empty_object() {
    let (app, a) = setup();
    let arn = s(&a, "associationArn").to_owned();
    // Keys with the characters AWS allows in tags, sent percent-encoded.
    let odd = "a b+c=d.e_f:g/h@i";
    app.tag_resource(&arn, &json!({ odd: "x", "env": "prod", "keep": "1" }))
        .ok();

    let answer = app.untag_resource(&arn, &["team", odd, "absent"]);
    assert_eq!(answer.ok(), &json!({}), "UntagResource answers {{}}");
    assert_eq!(
        tags_of(&app, &arn),
        json!({ "empty": "", "env": "prod", "keep": "1" })
    );

    // Only absent keys: nothing changes, and no error.
    assert_eq!(app.untag_resource(&arn, &["nope", "Keep"]).ok(), &json!({}));
    assert_eq!(
        tags_of(&app, &arn),
        json!({ "empty": "", "env": "prod", "keep": "1" }),
        "keys are case-sensitive"
    );

    app.untag_resource(&arn, &["empty", "env", "keep"]).ok();
    assert_eq!(tags_of(&app, &arn), json!({}));
    assert_eq!(
        app.describe_association("c1", s(&a, "associationId"))
            .association()["tags"],
        json!({})
    );

    app.untag_resource(&cluster_arn("c1"), &["owner"]).ok();
    assert_eq!(tags_of(&app, &cluster_arn("c1")), json!({}));
}

#[test]
fn a_resource_holds_at_most_50_tags_and_a_tag_resource_that_would_pass_50_is_400_bad_request_changing_nothing(
) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app
        .create_association("c1", &create_body("app", numbered_tags(0..49, "v")))
        .association();
    let arn = s(&a, "associationArn").to_owned();
    let forty_nine = numbered_tags(0..49, "v");

    // 49 + 2 new: refused, and neither the new nor the overwritten tag is stored.
    let answer = app.tag_resource(&arn, &json!({ "new1": "x", "new2": "y", "k0": "changed" }));
    let message = tag_api_error(&answer, 400, "BadRequestException", "49 + 2");
    assert!(message.contains("50"), "{message}");
    assert_eq!(tags_of(&app, &arn), forty_nine);

    // 49 + 1 new + 1 overwritten = 50: accepted.
    app.tag_resource(&arn, &json!({ "new1": "x", "k0": "changed" }))
        .ok();
    let mut fifty = forty_nine.clone();
    fifty["new1"] = json!("x");
    fifty["k0"] = json!("changed");
    assert_eq!(tags_of(&app, &arn), fifty);

    // At 50, overwriting is fine; one more key is not.
    app.tag_resource(&arn, &json!({ "k1": "again" })).ok();
    fifty["k1"] = json!("again");
    let answer = app.tag_resource(&arn, &json!({ "one-more": "x" }));
    tag_api_error(&answer, 400, "BadRequestException", "50 + 1");
    assert_eq!(tags_of(&app, &arn), fifty);

    // Room again after an untag.
    app.untag_resource(&arn, &["k2"]).ok();
    app.tag_resource(&arn, &json!({ "one-more": "x" })).ok();
    assert_eq!(tags_of(&app, &arn).as_object().unwrap().len(), 50);

    // 51 in one request, on a fresh cluster: refused.
    app.given_cluster("c2");
    let answer = app.tag_resource(&cluster_arn("c2"), &numbered_tags(0..51, ""));
    tag_api_error(&answer, 400, "BadRequestException", "51 at once");
    assert_eq!(tags_of(&app, &cluster_arn("c2")), json!({}));
    app.tag_resource(&cluster_arn("c2"), &numbered_tags(0..50, ""))
        .ok();
    assert_eq!(tags_of(&app, &cluster_arn("c2")), numbered_tags(0..50, ""));
}

#[test]
fn tag_keys_of_1_to_128_and_values_of_0_to_256_characters_are_accepted_and_one_more_is_refused() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r"));
    let arn = s(&a, "associationArn").to_owned();

    // Characters, not bytes: 'é' is two bytes, '日' three.
    let accepted: Vec<(&str, String, String)> = vec![
        ("a 1-character key", "k".into(), "v".into()),
        ("a 128-character key", "k".repeat(128), "v".into()),
        (
            "a 128-character key of 2-byte characters",
            "é".repeat(128),
            "v".into(),
        ),
        ("an empty value", "empty".into(), String::new()),
        ("a 256-character value", "long".into(), "v".repeat(256)),
        (
            "a 256-character value of 3-byte characters",
            "wide".into(),
            "日".repeat(256),
        ),
    ];
    let refused: Vec<(&str, String, String, &str)> = vec![
        ("an empty key", String::new(), "v".into(), "128"),
        ("a 129-character key", "k".repeat(129), "v".into(), "128"),
        (
            "a 129-character key of 2-byte characters",
            "é".repeat(129),
            "v".into(),
            "128",
        ),
        (
            "a 257-character value",
            "long2".into(),
            "v".repeat(257),
            "256",
        ),
        (
            "a 257-character value of 3-byte characters",
            "wide2".into(),
            "日".repeat(257),
            "256",
        ),
    ];

    for (what, key, value, rule) in &refused {
        let tags = json!({ key.as_str(): value });
        let answer = app.tag_resource(&arn, &tags);
        let message = tag_api_error(&answer, 400, "BadRequestException", what);
        assert!(
            message.contains(rule),
            "{what}: the message must state the limit: {message}"
        );

        let answer = app.create_association("c1", &create_body("refused", tags.clone()));
        let message = answer.error(400, "InvalidParameterException");
        assert!(
            message.contains("tags") && message.contains(rule),
            "{what} on Create: {message}"
        );
    }
    assert_eq!(
        tags_of(&app, &arn),
        json!({}),
        "refused tags stored nothing"
    );
    assert!(
        app.list_all_associations("c1", &[]).len() == 1,
        "refused creates stored nothing"
    );

    let mut expected = BTreeMap::new();
    for (what, key, value) in &accepted {
        app.tag_resource(&arn, &json!({ key.as_str(): value })).ok();
        expected.insert(key.clone(), value.clone());
        assert_eq!(tags_of(&app, &arn), json!(expected), "{what}");
    }
    // The same tags on Create.
    let tags = json!(expected);
    let created = app
        .create_association("c1", &create_body("accepted", tags.clone()))
        .association();
    assert_eq!(created["tags"], tags);
    assert_eq!(tags_of(&app, s(&created, "associationArn")), tags);
}

#[test]
fn keys_with_the_reserved_aws_prefix_in_any_case_are_refused_and_lookalikes_are_accepted() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r"));
    let arn = s(&a, "associationArn").to_owned();
    for key in [
        "aws:owner",
        "AWS:owner",
        "Aws:x",
        "aWs:",
        "aws:cloudformation:stack-name",
    ] {
        let tags = json!({ key: "v", "ok": "v" });
        let answer = app.tag_resource(&arn, &tags);
        let message = tag_api_error(&answer, 400, "BadRequestException", key);
        assert!(message.contains("aws:"), "{key}: {message}");
        let answer = app.tag_resource(&cluster_arn("c1"), &tags);
        tag_api_error(&answer, 400, "BadRequestException", key);

        let message = app
            .create_association("c1", &create_body("refused", tags.clone()))
            .error(400, "InvalidParameterException");
        assert!(
            message.contains("aws:") && message.contains("tags"),
            "{key}: {message}"
        );
        let message = app
            .create_cluster_with(&json!({
                "name": "refused",
                "roleArn": role("eks-cluster-role"),
                "resourcesVpcConfig": {},
                "tags": tags,
            }))
            .error(400, "InvalidParameterException");
        assert!(message.contains("aws:"), "{key}: {message}");
    }
    assert_eq!(tags_of(&app, &arn), json!({}));
    assert_eq!(tags_of(&app, &cluster_arn("c1")), json!({}));
    app.describe_cluster("refused")
        .error(404, "ResourceNotFoundException");
    assert_eq!(app.list_all_associations("c1", &[]).len(), 1);

    let lookalikes =
        json!({ "aws": "1", "awsx:y": "2", "my-aws:z": "3", "aws-team": "4", "aw:s": "5" });
    app.tag_resource(&arn, &lookalikes).ok();
    assert_eq!(tags_of(&app, &arn), lookalikes);
}

#[test]
fn a_missing_or_empty_tags_member_or_missing_tag_keys_is_400_bad_request() {
    let (app, a) = setup();
    let arn = s(&a, "associationArn").to_owned();
    let before = tags_of(&app, &arn);
    let path = format!("/tags/{}", encode(&arn));
    let bodies: Vec<(&str, Option<&[u8]>)> = vec![
        ("no body", None),
        ("an empty body", Some(b"")),
        ("{}", Some(b"{}")),
        ("empty tags", Some(br#"{"tags":{}}"#)),
        ("null tags", Some(br#"{"tags":null}"#)),
        ("tags a string", Some(br#"{"tags":"team=x"}"#)),
        (
            "tags a list",
            Some(br#"{"tags":[{"key":"team","value":"x"}]}"#),
        ),
        ("a tag value a number", Some(br#"{"tags":{"team":1}}"#)),
    ];
    for (what, body) in bodies {
        let content_type = body.map(|_| "application/json");
        let answer = app.request("POST", &path, content_type, body);
        let message = tag_api_error(&answer, 400, "BadRequestException", what);
        assert!(message.contains("tags"), "{what}: {message}");
    }
    let fifty_one: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
    let fifty_one = fifty_one.iter().map(String::as_str).collect::<Vec<_>>();
    for (what, query) in [
        ("no tagKeys", String::new()),
        ("another parameter", "?keys=team".to_owned()),
        ("an empty key", "?tagKeys=".to_owned()),
        (
            "a 129-character key",
            crate::helpers::query(&[("tagKeys", "k".repeat(129).as_str())]),
        ),
        (
            "51 keys",
            crate::helpers::query(
                &fifty_one
                    .iter()
                    .map(|k| ("tagKeys", *k))
                    .collect::<Vec<_>>(),
            ),
        ),
    ] {
        let answer = app.delete(&format!("{path}{query}"));
        let message = tag_api_error(&answer, 400, "BadRequestException", what);
        assert!(message.contains("tagKeys"), "{what}: {message}");
    }
    assert_eq!(tags_of(&app, &arn), before, "nothing changed");
}

#[test]
fn an_arn_that_is_malformed_not_of_a_cluster_or_association_or_of_another_partition_account_or_region_is_400_bad_request(
) {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let assoc_tags = tags_of(&app, s(&a, "associationArn"));
    let cluster_tags = tags_of(&app, &cluster_arn("c1"));
    let p = format!("us-east-1:{ACCOUNT}");
    let arns: Vec<(&str, String)> = vec![
        ("an empty ARN", String::new()),
        ("not an ARN", "c1".into()),
        ("a name with colons", "not:an:arn".into()),
        ("too few parts", "arn:aws:eks:us-east-1".into()),
        ("no resource", format!("arn:aws:eks:{p}")),
        ("an empty resource", format!("arn:aws:eks:{p}:")),
        ("no cluster name", format!("arn:aws:eks:{p}:cluster")),
        ("an empty cluster name", format!("arn:aws:eks:{p}:cluster/")),
        (
            "an invalid cluster name",
            format!("arn:aws:eks:{p}:cluster/-c1"),
        ),
        (
            "a cluster ARN with an extra part",
            format!("arn:aws:eks:{p}:cluster/c1/extra"),
        ),
        (
            "a malformed association ID",
            format!("arn:aws:eks:{p}:podidentityassociation/c1/a-1"),
        ),
        (
            "an association ARN without its ID",
            format!("arn:aws:eks:{p}:podidentityassociation/c1"),
        ),
        ("not arn:", format!("nra:aws:eks:{p}:cluster/c1")),
        ("an IAM role ARN", role("c1")),
        ("an S3 ARN", "arn:aws:s3:::c1".into()),
        (
            "a nodegroup ARN",
            format!("arn:aws:eks:{p}:nodegroup/c1/ng/0ac6e3b1-0c2b-4d5e-8f9a-1b2c3d4e5f60"),
        ),
        (
            "a fargate profile ARN",
            format!("arn:aws:eks:{p}:fargateprofile/c1/fp/0ac6e3b1-0c2b-4d5e-8f9a-1b2c3d4e5f60"),
        ),
        (
            "an add-on ARN",
            format!("arn:aws:eks:{p}:addon/c1/vpc-cni/0ac6e3b1-0c2b-4d5e-8f9a-1b2c3d4e5f60"),
        ),
        (
            "another partition",
            format!("arn:aws-cn:eks:{p}:cluster/c1"),
        ),
        (
            "another partition's association",
            format!("arn:aws-us-gov:eks:{p}:podidentityassociation/c1/{id}"),
        ),
        (
            "another account",
            "arn:aws:eks:us-east-1:111122223333:cluster/c1".into(),
        ),
        (
            "another account's association",
            format!("arn:aws:eks:us-east-1:111122223333:podidentityassociation/c1/{id}"),
        ),
        (
            "another region",
            format!("arn:aws:eks:us-west-2:{ACCOUNT}:cluster/c1"),
        ),
        (
            "another region's association",
            format!("arn:aws:eks:eu-west-1:{ACCOUNT}:podidentityassociation/c1/{id}"),
        ),
        (
            "an upper-case service",
            format!("arn:aws:EKS:{p}:cluster/c1"),
        ),
    ];
    for (what, arn) in &arns {
        for (op, answer) in [
            ("TagResource", app.tag_resource(arn, &json!({ "k": "v" }))),
            ("UntagResource", app.untag_resource(arn, &["owner", "team"])),
            ("ListTagsForResource", app.list_tags(arn)),
        ] {
            let what = format!("{op} with {what} ({arn})");
            let message = tag_api_error(&answer, 400, "BadRequestException", &what);
            assert!(message.contains("resourceArn"), "{what}: {message}");
        }
    }
    assert_eq!(tags_of(&app, s(&a, "associationArn")), assoc_tags);
    assert_eq!(tags_of(&app, &cluster_arn("c1")), cluster_tags);
}

#[test]
fn a_well_formed_arn_of_a_cluster_or_association_that_does_not_exist_is_404_not_found() {
    let (app, a) = setup();
    app.given_cluster("c2");
    let id = s(&a, "associationId").to_owned();
    let arns = [
        cluster_arn("ghost"),
        format!(
            "arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/c1/{WELL_FORMED_UNKNOWN_ID}"
        ),
        format!(
            "arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/ghost/{WELL_FORMED_UNKNOWN_ID}"
        ),
        // c1's association does not exist under c2.
        format!("arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/c2/{id}"),
    ];
    for arn in &arns {
        for (op, answer) in [
            ("TagResource", app.tag_resource(arn, &json!({ "k": "v" }))),
            ("UntagResource", app.untag_resource(arn, &["team"])),
            ("ListTagsForResource", app.list_tags(arn)),
        ] {
            let what = format!("{op} on {arn}");
            let message = tag_api_error(&answer, 404, "NotFoundException", &what);
            assert!(message.contains(arn.as_str()), "{what}: {message}");
        }
    }
    app.describe_cluster("ghost")
        .error(404, "ResourceNotFoundException");
    assert_eq!(tags_of(&app, &cluster_arn("c2")), json!({}));
    assert_eq!(
        tags_of(&app, s(&a, "associationArn")),
        json!({ "team": "payments", "empty": "" })
    );
}

#[test]
fn tags_are_deleted_with_their_resource_when_the_association_or_the_cluster_is_deleted() {
    let (app, a) = setup();
    let arn = s(&a, "associationArn").to_owned();
    let b = app
        .create_association("c1", &create_body("second", json!({ "b": "1" })))
        .association();
    let b_arn = s(&b, "associationArn").to_owned();

    app.delete_association("c1", s(&a, "associationId"))
        .association();
    let answer = app.list_tags(&arn);
    tag_api_error(&answer, 404, "NotFoundException", "the deleted association");
    assert_eq!(tags_of(&app, &b_arn), json!({ "b": "1" }));

    app.delete_cluster("c1").cluster();
    for gone in [&cluster_arn("c1"), &b_arn] {
        let answer = app.list_tags(gone);
        tag_api_error(&answer, 404, "NotFoundException", gone);
    }

    // A new cluster of the same name starts without the old tags, and the old
    // association ARN stays unknown.
    app.given_cluster("c1");
    assert_eq!(tags_of(&app, &cluster_arn("c1")), json!({}));
    assert_eq!(app.describe_cluster("c1").cluster()["tags"], json!({}));
    let answer = app.list_tags(&b_arn);
    tag_api_error(
        &answer,
        404,
        "NotFoundException",
        "an association of the old cluster",
    );
}

#[test]
fn tags_on_create_with_more_than_50_or_bad_keys_are_400_invalid_parameter_and_nothing_is_created() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let cases: Vec<(&str, Value)> = vec![
        ("51 tags", numbered_tags(0..51, "v")),
        ("an aws: key", json!({ "aws:x": "v" })),
        ("an empty key", json!({ "": "v" })),
        ("a 129-character key", json!({ "k".repeat(129): "v" })),
        ("a 257-character value", json!({ "k": "v".repeat(257) })),
    ];
    for (what, tags) in &cases {
        let answer = app.create_association("c1", &create_body("app", tags.clone()));
        let message = answer.error(400, "InvalidParameterException");
        assert!(message.contains("tags"), "{what}: {message}");

        let answer = app.create_cluster_with(&json!({
            "name": "c9",
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": {},
            "tags": tags,
        }));
        let message = answer.error(400, "InvalidParameterException");
        assert!(
            message.contains("tags"),
            "{what} on CreateCluster: {message}"
        );
    }
    assert!(app.list_all_associations("c1", &[]).is_empty());
    app.describe_cluster("c9")
        .error(404, "ResourceNotFoundException");
    // The service account is free, and 50 tags are fine.
    let created = app
        .create_association("c1", &create_body("app", numbered_tags(0..50, "v")))
        .association();
    assert_eq!(created["tags"], numbered_tags(0..50, "v"));
}

#[test]
fn a_malformed_request_to_a_tag_api_is_400_bad_request_like_every_other_client_error_of_the_tag_apis(
) {
    let (app, a) = setup();
    let arn = s(&a, "associationArn").to_owned();
    let path = format!("/tags/{}", encode(&arn));
    let tag_body: &[u8] = br#"{"tags":{"k":"v"}}"#;
    let mut answers: Vec<(String, Answer)> = Vec::new();
    let bad_bodies: [(&str, &[u8]); 4] = [
        ("truncated JSON", br#"{"tags": {"k": "v""#),
        ("not JSON", b"tags=k"),
        ("a JSON array", br#"[{"tags": {"k": "v"}}]"#),
        ("JSON null", b"null"),
    ];
    for (what, body) in bad_bodies {
        answers.push((
            format!("TagResource with {what}"),
            app.request("POST", &path, Some("application/json"), Some(body)),
        ));
    }
    // An ARN label that is not valid percent-encoded UTF-8 is a malformed ARN.
    for broken in ["%FF", "%2", "%zz"] {
        let label_path = format!("{path}{broken}");
        answers.push((
            format!("TagResource on an ARN ending in {broken}"),
            app.request(
                "POST",
                &label_path,
                Some("application/json"),
                Some(tag_body),
            ),
        ));
        answers.push((
            format!("UntagResource on an ARN ending in {broken}"),
            app.delete(&format!("{label_path}?tagKeys=team")),
        ));
        answers.push((
            format!("ListTagsForResource on an ARN ending in {broken}"),
            app.get(&label_path),
        ));
    }
    answers.push((
        "UntagResource with a broken escape in tagKeys".into(),
        app.delete(&format!("{path}?tagKeys=%zz")),
    ));
    answers.push((
        "UntagResource with a tag key that is not UTF-8".into(),
        app.delete(&format!("{path}?tagKeys=%FF")),
    ));

    let wrong: Vec<String> = answers
        .iter()
        .filter(|(_, answer)| {
            (answer.status, answer.error_type.as_deref()) != (400, Some("BadRequestException"))
        })
        .map(|(what, answer)| {
            format!(
                "{what}: {} {:?} {}",
                answer.status, answer.error_type, answer.text
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the Tag APIs' only client errors are BadRequestException and NotFoundException, but:\n{}",
        wrong.join("\n")
    );
    for (what, answer) in &answers {
        tag_api_error(answer, 400, "BadRequestException", what);
    }
    assert_eq!(
        tags_of(&app, &arn),
        json!({ "team": "payments", "empty": "" })
    );
}

#[test]
fn concurrent_tag_resource_calls_never_take_a_resource_past_50_tags() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r"));
    for arn in [s(&a, "associationArn").to_owned(), cluster_arn("c1")] {
        // 8 callers add 10 new keys each: only 5 of them can fit.
        let answers: Vec<(usize, Answer)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let client = app.client();
                    let arn = arn.clone();
                    scope.spawn(move || {
                        let tags: Map<String, Value> = (0..10)
                            .map(|i| (format!("t{t}-k{i}"), json!("v")))
                            .collect();
                        (t, client.tag_resource(&arn, &Value::Object(tags)))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut accepted = Vec::new();
        for (t, answer) in &answers {
            if answer.status == 200 {
                accepted.push(*t);
            } else {
                tag_api_error(answer, 400, "BadRequestException", &format!("caller {t}"));
            }
        }
        assert_eq!(accepted.len(), 5, "{arn}: exactly 5 callers fit");
        let tags = tags_of(&app, &arn);
        let keys: Vec<&String> = tags.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 50, "{arn}");
        for key in keys {
            let caller: usize = key[1..key.find('-').unwrap()].parse().unwrap();
            assert!(
                accepted.contains(&caller),
                "{arn}: {key} of a refused caller"
            );
        }
    }
}

#[test]
fn a_tag_resource_racing_the_delete_of_its_association_never_brings_its_tags_back() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    for round in 0..10 {
        let a = app.given_association("c1", "default", &format!("sa-{round}"), &role("r"));
        let arn = s(&a, "associationArn").to_owned();
        let id = s(&a, "associationId").to_owned();
        let tagged = std::thread::scope(|scope| {
            let tagger = {
                let client = app.client();
                let arn = arn.clone();
                scope.spawn(move || {
                    (0..5)
                        .map(|i| client.tag_resource(&arn, &json!({ format!("k{i}"): "v" })))
                        .collect::<Vec<_>>()
                })
            };
            let deleter = {
                let client = app.client();
                let id = id.clone();
                scope.spawn(move || client.delete_association("c1", &id))
            };
            deleter.join().unwrap().association();
            tagger.join().unwrap()
        });
        for answer in &tagged {
            if answer.status != 200 {
                tag_api_error(answer, 404, "NotFoundException", &format!("round {round}"));
            }
        }
        tag_api_error(
            &app.list_tags(&arn),
            404,
            "NotFoundException",
            &format!("round {round}"),
        );
        app.describe_association("c1", &id)
            .error(404, "ResourceNotFoundException");
    }
    assert!(app.list_all_associations("c1", &[]).is_empty());
}

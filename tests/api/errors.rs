//! 404s, malformed IDs and bad input: every refusal in the restJson1 error
//! form (checked for every answer by `check_answer`), never a 500, and
//! nothing stored.

use serde_json::{json, Value};

use crate::helpers::{role, s, StoredCounts, TestApp};

const WELL_FORMED_UNKNOWN_ID: &str = "a-0123456789abcdefg";

#[test]
fn an_unknown_cluster_is_404_naming_it_on_create_describe_and_update() {
    let app = TestApp::spawn();
    app.given_cluster("known");
    let create = app.create_association(
        "ghost",
        &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r") }),
    );
    let describe = app.describe_association("ghost", WELL_FORMED_UNKNOWN_ID);
    let update = app.update_association(
        "ghost",
        WELL_FORMED_UNKNOWN_ID,
        &json!({ "roleArn": role("r") }),
    );
    let describe_cluster = app.describe_cluster("ghost");
    for (what, answer) in [
        ("create", create),
        ("describe", describe),
        ("update", update),
        ("describe cluster", describe_cluster),
    ] {
        let message = answer.error(404, "ResourceNotFoundException");
        assert!(message.contains("ghost"), "{what}: {message}");
        assert_eq!(answer.error_cluster(), Some("ghost"), "{what}");
    }
    app.describe_cluster("ghost")
        .error(404, "ResourceNotFoundException");
}

#[test]
fn a_well_formed_association_id_that_does_not_exist_is_404_naming_it() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let describe = app.describe_association("c1", WELL_FORMED_UNKNOWN_ID);
    let update = app.update_association(
        "c1",
        WELL_FORMED_UNKNOWN_ID,
        &json!({ "roleArn": role("r2") }),
    );
    for (what, answer) in [("describe", describe), ("update", update)] {
        let message = answer.error(404, "ResourceNotFoundException");
        assert!(
            message.contains(WELL_FORMED_UNKNOWN_ID),
            "{what}: {message}"
        );
        assert_eq!(answer.error_cluster(), Some("c1"), "{what}");
    }
    assert_eq!(
        app.describe_association("c1", s(&a, "associationId"))
            .association(),
        a
    );
}

#[test]
fn a_malformed_association_id_is_400_and_one_of_the_wrong_length_should_be_19_characters_long() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let wrong_length = ["a-123", "a-0123456789abcdefgh", "x", "a-0123456789abcdef"];
    let wrong_alphabet = [
        "a-0123456789ABCDEFG",
        "b-0123456789abcdefg",
        "a_0123456789abcdefg",
        "a-0123456789abcdef-",
        // 19 characters, but not ASCII.
        "a-%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
    ];
    for id in wrong_length.iter().chain(&wrong_alphabet) {
        let describe = app.describe_association("c1", id);
        let update = app.update_association("c1", id, &json!({ "roleArn": role("r") }));
        for (what, answer) in [("describe", describe), ("update", update)] {
            let message = answer.error(400, "InvalidParameterException");
            assert!(message.contains("associationId"), "{what} {id}: {message}");
            if wrong_length.contains(id) {
                assert!(
                    message.contains("should be 19 characters long"),
                    "{what} {id}: {message}"
                );
            }
        }
    }
    // Also for an unknown cluster: the ID is checked first, as EKS does.
    let message = app
        .describe_association("ghost", "a-123")
        .error(400, "InvalidParameterException");
    assert!(
        message.contains("should be 19 characters long"),
        "{message}"
    );
}

/// A request that must be refused: the status and type it must get, and the
/// words its message must contain.
struct Bad {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    status: u16,
    error_type: &'static str,
    mentions: Vec<&'static str>,
}

fn bad(
    what: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Value,
    mentions: &[&'static str],
) -> Bad {
    Bad {
        what,
        method,
        path: path.into(),
        content_type: Some("application/json"),
        body: Some(serde_json::to_vec(&body).unwrap()),
        status: 400,
        error_type: "InvalidParameterException",
        mentions: mentions.to_vec(),
    }
}

fn raw(
    what: &'static str,
    method: &'static str,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: Option<&[u8]>,
) -> Bad {
    Bad {
        what,
        method,
        path: path.into(),
        content_type,
        body: body.map(<[u8]>::to_vec),
        status: 400,
        error_type: "InvalidParameterException",
        mentions: Vec::new(),
    }
}

impl Bad {
    fn expect(mut self, status: u16, error_type: &'static str) -> Bad {
        self.status = status;
        self.error_type = error_type;
        self
    }

    fn naming(mut self, mentions: &[&'static str]) -> Bad {
        self.mentions = mentions.to_vec();
        self
    }
}

#[test]
fn bad_input_is_refused_naming_the_member_and_stores_nothing() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();
    let before = app.stored_counts();
    let clusters_before = app.list_clusters("").ok().clone();
    let assoc_path = "/clusters/c1/pod-identity-associations";
    let one_path = format!("{assoc_path}/{id}");
    let ok_create = |overrides: Value| {
        let mut body =
            json!({ "namespace": "ns-new", "serviceAccount": "sa-new", "roleArn": role("r") });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let deep_member = format!(
        "{{\"namespace\":{}1{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    )
    .into_bytes();
    let cases = vec![
        // Malformed JSON and bodies that are not objects.
        raw(
            "JSON nested 100000 deep",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(deep.as_slice()),
        ),
        raw(
            "a member nested 50000 deep",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(deep_member.as_slice()),
        ),
        raw(
            "a number out of range",
            "POST",
            &one_path,
            Some("application/json"),
            Some(br#"{"createdAt": 1e400, "roleArn": "x"}"#.as_slice()),
        ),
        raw(
            "JSON null",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(b"null".as_slice()),
        ),
        raw(
            "invalid UTF-8",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(b"{\"namespace\": \"\xff\"}".as_slice()),
        ),
        raw(
            "truncated JSON",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(br#"{"namespace": "ns-new", "#.as_slice()),
        ),
        raw(
            "not JSON at all",
            "POST",
            &one_path,
            Some("application/json"),
            Some(b"roleArn=x".as_slice()),
        ),
        raw(
            "a JSON array",
            "POST",
            assoc_path,
            Some("application/json"),
            Some(br#"[{"namespace":"ns-new"}]"#.as_slice()),
        ),
        raw(
            "a JSON string",
            "POST",
            "/clusters",
            Some("application/json"),
            Some(br#""c9""#.as_slice()),
        ),
        // Wrong member types.
        bad(
            "namespace a number",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": 5 })),
            &["namespace"],
        ),
        bad(
            "serviceAccount an array",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": ["a"] })),
            &["serviceAccount"],
        ),
        bad(
            "roleArn an object",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": { "arn": role("r") } })),
            &["roleArn"],
        ),
        bad(
            "tags a list",
            "POST",
            assoc_path,
            ok_create(json!({ "tags": ["a"] })),
            &["tags"],
        ),
        bad(
            "a tag value a number",
            "POST",
            assoc_path,
            ok_create(json!({ "tags": { "k": 1 } })),
            &["tags"],
        ),
        bad(
            "clientRequestToken a number",
            "POST",
            assoc_path,
            ok_create(json!({ "clientRequestToken": 7 })),
            &["clientRequestToken"],
        ),
        bad(
            "update roleArn a boolean",
            "POST",
            &one_path,
            json!({ "roleArn": true }),
            &["roleArn"],
        ),
        bad(
            "update createdAt a string",
            "POST",
            &one_path,
            json!({ "createdAt": "yesterday", "roleArn": role("r9") }),
            &["createdAt"],
        ),
        bad(
            "update namespace a number",
            "POST",
            &one_path,
            json!({ "namespace": 1, "roleArn": role("r9") }),
            &["namespace"],
        ),
        bad(
            "cluster name a number",
            "POST",
            "/clusters",
            json!({ "name": 9, "roleArn": role("r"), "resourcesVpcConfig": {} }),
            &["name"],
        ),
        bad(
            "resourcesVpcConfig a string",
            "POST",
            "/clusters",
            json!({ "name": "c9", "roleArn": role("r"), "resourcesVpcConfig": "vpc" }),
            &["resourcesVpcConfig"],
        ),
        // Missing required members (null counts as missing).
        bad(
            "no namespace",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": null })),
            &["namespace"],
        ),
        bad(
            "no serviceAccount",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": null })),
            &["serviceAccount"],
        ),
        bad(
            "no roleArn",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": null })),
            &["roleArn"],
        ),
        bad(
            "a null namespace",
            "POST",
            assoc_path,
            json!({ "namespace": null, "serviceAccount": "sa-new", "roleArn": role("r") }),
            &["namespace"],
        ),
        raw("no body on create", "POST", assoc_path, None, None).naming(&["namespace"]),
        bad(
            "an empty object on create",
            "POST",
            assoc_path,
            json!({}),
            &["namespace"],
        ),
        bad(
            "no cluster name",
            "POST",
            "/clusters",
            json!({ "roleArn": role("r"), "resourcesVpcConfig": {} }),
            &["name"],
        ),
        bad(
            "no cluster roleArn",
            "POST",
            "/clusters",
            json!({ "name": "c9", "resourcesVpcConfig": {} }),
            &["roleArn"],
        ),
        bad(
            "no resourcesVpcConfig",
            "POST",
            "/clusters",
            json!({ "name": "c9", "roleArn": role("r") }),
            &["resourcesVpcConfig"],
        ),
        bad(
            "no status on the admin route",
            "PUT",
            "/admin/v1/clusters/c1/status",
            json!({}),
            &["status"],
        ),
        // Invalid role ARNs, on create and update.
        bad(
            "a role of another account",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": "arn:aws:iam::111122223333:role/r" })),
            &["roleArn"],
        ),
        bad(
            "a user, not a role",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": "arn:aws:iam::123456789012:user/r" })),
            &["roleArn"],
        ),
        bad(
            "another partition",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": "arn:aws-cn:iam::123456789012:role/r" })),
            &["roleArn"],
        ),
        bad(
            "not an ARN",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": "my-role" })),
            &["roleArn"],
        ),
        bad(
            "an empty roleArn",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": "" })),
            &["roleArn"],
        ),
        bad(
            "a role name of 65 characters",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": role(&"n".repeat(65)) })),
            &["roleArn"],
        ),
        bad(
            "a role path of 513 characters",
            "POST",
            assoc_path,
            ok_create(json!({ "roleArn": role(&format!("{}/n", "p".repeat(511))) })),
            &["roleArn"],
        ),
        bad(
            "an STS role",
            "POST",
            &one_path,
            json!({ "roleArn": "arn:aws:sts::123456789012:role/r" }),
            &["roleArn"],
        ),
        bad(
            "update to another account's role",
            "POST",
            &one_path,
            json!({ "roleArn": "arn:aws:iam::111122223333:role/r" }),
            &["roleArn"],
        ),
        bad(
            "a cluster role of another account",
            "POST",
            "/clusters",
            json!({ "name": "c9", "roleArn": "arn:aws:iam::111122223333:role/r", "resourcesVpcConfig": {} }),
            &["roleArn"],
        ),
        // Invalid Kubernetes names.
        bad(
            "an upper-case namespace",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": "Default" })),
            &["namespace"],
        ),
        bad(
            "a namespace starting with -",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": "-ns" })),
            &["namespace"],
        ),
        bad(
            "a namespace of 64 characters",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": "n".repeat(64) })),
            &["namespace"],
        ),
        bad(
            "an empty namespace",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": "" })),
            &["namespace"],
        ),
        bad(
            "a dotted namespace",
            "POST",
            assoc_path,
            ok_create(json!({ "namespace": "a.b" })),
            &["namespace"],
        ),
        bad(
            "a service account with _",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": "my_sa" })),
            &["serviceAccount"],
        ),
        bad(
            "a service account with ..",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": "a..b" })),
            &["serviceAccount"],
        ),
        bad(
            "an empty service account",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": "" })),
            &["serviceAccount"],
        ),
        bad(
            "a service account of 254 characters",
            "POST",
            assoc_path,
            ok_create(json!({ "serviceAccount": "s".repeat(254) })),
            &["serviceAccount"],
        ),
        bad(
            "an invalid cluster name",
            "POST",
            "/clusters",
            json!({ "name": "-c9", "roleArn": role("r"), "resourcesVpcConfig": {} }),
            &["name"],
        ),
        bad(
            "a tag key with the aws: prefix",
            "POST",
            assoc_path,
            ok_create(json!({ "tags": { "aws:owner": "x" } })),
            &["tags"],
        ),
        bad(
            "an empty clientRequestToken",
            "POST",
            assoc_path,
            ok_create(json!({ "clientRequestToken": "" })),
            &["clientRequestToken"],
        ),
        // Content-Type other than application/json with a body.
        raw(
            "text/plain",
            "POST",
            assoc_path,
            Some("text/plain"),
            Some(
                serde_json::to_vec(&ok_create(json!({})))
                    .unwrap()
                    .as_slice(),
            ),
        )
        .expect(415, "UnsupportedMediaTypeException"),
        raw(
            "no Content-Type",
            "POST",
            assoc_path,
            None,
            Some(
                serde_json::to_vec(&ok_create(json!({})))
                    .unwrap()
                    .as_slice(),
            ),
        )
        .expect(415, "UnsupportedMediaTypeException"),
        raw(
            "text/plain on update",
            "POST",
            &one_path,
            Some("text/plain"),
            Some(
                serde_json::to_vec(&json!({ "roleArn": role("r9") }))
                    .unwrap()
                    .as_slice(),
            ),
        )
        .expect(415, "UnsupportedMediaTypeException"),
        raw(
            "form data on create cluster",
            "POST",
            "/clusters",
            Some("application/x-www-form-urlencoded"),
            Some(b"name=c9".as_slice()),
        )
        .expect(415, "UnsupportedMediaTypeException"),
        // A path label that is an invalid name.
        raw(
            "an empty cluster label",
            "POST",
            "/clusters//pod-identity-associations",
            Some("application/json"),
            Some(
                serde_json::to_vec(&ok_create(json!({})))
                    .unwrap()
                    .as_slice(),
            ),
        )
        .naming(&["cluster"]),
        raw(
            "a broken percent escape",
            "GET",
            "/clusters/c%2",
            None,
            None,
        ),
    ];
    for case in &cases {
        let answer = app.request(
            case.method,
            &case.path,
            case.content_type,
            case.body.as_deref(),
        );
        let message = answer.error(case.status, case.error_type);
        for word in &case.mentions {
            assert!(
                message.contains(word),
                "{}: the message must name {word}: {message}",
                case.what
            );
        }
        // Nothing visible changed.
        assert_eq!(
            app.describe_association("c1", &id).association(),
            a,
            "{}",
            case.what
        );
        assert_eq!(
            app.list_clusters("").ok(),
            &clusters_before,
            "{}",
            case.what
        );
        assert_eq!(
            app.describe_cluster("c1").cluster()["status"],
            "ACTIVE",
            "{}",
            case.what
        );
    }
    // The service account the refused creates named is still free...
    let created = app.given_association("c1", "ns-new", "sa-new", &role("r"));
    // ... and, read from the store itself, the refused requests left no
    // record, index entry or token behind (the create above made exactly one
    // of each, and made everything before it durable).
    let after = app.stored_counts();
    assert_eq!(
        after,
        StoredCounts {
            associations: before.associations + 1,
            index: before.index + 1,
            ..before
        }
    );
    assert_eq!(
        app.describe_association("c1", s(&created, "associationId"))
            .association(),
        created
    );
}

#[test]
fn a_body_over_one_mib_is_refused_with_a_4xx_in_the_error_form_and_stores_nothing() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId").to_owned();
    let before = app.stored_counts();

    let padding = "x".repeat(1024 * 1024 + 1);
    let create = json!({
        "namespace": "big",
        "serviceAccount": "big",
        "roleArn": role("r"),
        "tags": { "padding": padding },
    });
    let update = json!({ "roleArn": role("r2"), "padding": padding });
    let answers = [
        app.create_association("c1", &create),
        app.update_association("c1", &id, &update),
        app.create_cluster_with(&json!({
            "name": "big", "roleArn": role("r"), "resourcesVpcConfig": { "padding": padding },
        })),
    ];
    // Without a Content-Length too (chunked transfer encoding).
    let chunked = app.request_chunked(
        "POST",
        "/clusters/c1/pod-identity-associations",
        "application/json",
        &serde_json::to_vec(&create).unwrap(),
    );
    let answers = [
        answers[0].clone(),
        answers[1].clone(),
        answers[2].clone(),
        chunked,
    ];
    for answer in &answers {
        assert!(
            (400..500).contains(&answer.status),
            "{} {}: {} {}",
            answer.method,
            answer.path,
            answer.status,
            answer.text
        );
        assert_eq!(answer.status, 413, "{}", answer.text);
    }
    assert_eq!(app.describe_association("c1", &id).association(), a);
    app.describe_cluster("big")
        .error(404, "ResourceNotFoundException");
    // A sentinel write makes anything written before it durable.
    app.given_association("c1", "default", "sentinel", &role("r"));
    let after = app.stored_counts();
    assert_eq!(after.associations, before.associations + 1);
    assert_eq!(after.clusters, before.clusters);
    assert_eq!(after.tokens, before.tokens);
}

#[test]
fn unknown_routes_are_404_unknown_operation_and_a_wrong_method_is_405() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    let id = s(&a, "associationId");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nothing"),
        ("POST", "/clusters/c1/nodegroups"),
        (
            "GET",
            "/clusters/c1/pod-identity-associations/a-0123456789abcdefg/extra",
        ),
        ("POST", "/v1/clusters"),
    ] {
        app.request(method, path, None, None)
            .error(404, "UnknownOperationException");
    }
    let answer = app.request(
        "POST",
        "/nothing",
        Some("application/json"),
        Some(b"{\"name\":\"c1\"}"),
    );
    answer.error(404, "UnknownOperationException");

    for (method, path, allow) in [
        ("PUT", "/clusters".to_owned(), "POST"),
        ("PUT", "/clusters/c1".to_owned(), "GET"),
        (
            "PATCH",
            format!("/clusters/c1/pod-identity-associations/{id}"),
            "POST",
        ),
    ] {
        let answer = app.request(method, &path, None, None);
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text);
        assert!(
            answer.allow.as_deref().is_some_and(|a| a.contains(allow)),
            "{method} {path}: Allow {:?}",
            answer.allow
        );
    }
    assert_eq!(app.describe_association("c1", id).association(), a);
}

#[test]
fn path_labels_are_percent_decoded_after_the_path_is_split() {
    let app = TestApp::spawn();
    app.given_cluster("my-cluster");
    let a = app.given_association("my-cluster", "default", "app", &role("r1"));
    let id = s(&a, "associationId");
    // %2D is '-': the same cluster.
    assert_eq!(
        app.describe_cluster("my%2Dcluster").cluster()["name"],
        "my-cluster"
    );
    assert_eq!(
        app.describe_association("my%2dcluster", id).association(),
        a
    );
    // An encoded '/' stays inside its label: this is DescribeCluster of the
    // name "my-cluster/pod-identity-associations", which no cluster can have.
    let message = app
        .describe_cluster("my-cluster%2Fpod-identity-associations")
        .error(404, "ResourceNotFoundException");
    assert!(
        message.contains("my-cluster/pod-identity-associations"),
        "{message}"
    );
}

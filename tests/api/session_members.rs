//! The newest association members: disableSessionTags, targetRoleArn,
//! externalId and policy, on Create, Update and Describe.

use serde_json::{json, Value};

use crate::helpers::{role, s, ts, TestApp};

const TARGET: &str = "arn:aws:iam::111122223333:role/target";
const TARGET2: &str = "arn:aws:iam::444455556666:role/path/to/target2";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const TOKEN: &str = "5d2c9a4e-7b1f-4e3a-8c6d-2f0e1a9b8c01";

/// True for a UUID in its canonical text form (8-4-4-4-12 lowercase hex).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[track_caller]
fn external_id(a: &Value) -> String {
    let id = s(a, "externalId").to_owned();
    assert!(is_uuid(&id), "externalId {id:?} is not a UUID");
    id
}

#[track_caller]
fn assert_absent(a: &Value, members: &[&str]) {
    for member in members {
        assert!(a.get(member).is_none(), "{member} is in {a}");
    }
}

fn setup() -> (TestApp, Value) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r1"));
    (app, a)
}

fn create(app: &TestApp, sa: &str, members: Value) -> crate::helpers::Answer {
    let mut body = json!({ "namespace": "default", "serviceAccount": sa, "roleArn": role("r1") });
    for (k, v) in members.as_object().expect("an object") {
        body[k] = v.clone();
    }
    app.create_association("c1", &body)
}

#[test]
fn disable_session_tags_defaults_to_false_and_is_always_returned() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    assert_eq!(a["disableSessionTags"], json!(false), "Create: {a}");
    assert_eq!(
        app.describe_association("c1", &id).association()["disableSessionTags"],
        json!(false)
    );
    let updated = app
        .update_association("c1", &id, &json!({ "roleArn": role("r2") }))
        .association();
    assert_eq!(
        updated["disableSessionTags"],
        json!(false),
        "Update: {updated}"
    );

    let on = app
        .update_association("c1", &id, &json!({ "disableSessionTags": true }))
        .association();
    assert_eq!(on["disableSessionTags"], json!(true));
    let off = app
        .update_association("c1", &id, &json!({ "disableSessionTags": false }))
        .association();
    assert_eq!(
        off["disableSessionTags"],
        json!(false),
        "false is sent, not omitted"
    );
    let deleted = app.delete_association("c1", &id).association();
    assert_eq!(
        deleted["disableSessionTags"],
        json!(false),
        "Delete: {deleted}"
    );

    let created = create(&app, "tagless", json!({ "disableSessionTags": true })).association();
    assert_eq!(created["disableSessionTags"], json!(true));
    assert_eq!(
        app.describe_association("c1", s(&created, "associationId"))
            .association()["disableSessionTags"],
        json!(true)
    );

    for bad in [json!("true"), json!(1), json!({})] {
        let message = create(&app, "bad", json!({ "disableSessionTags": bad }))
            .error(400, "InvalidParameterException");
        assert!(message.contains("disableSessionTags"), "{bad}: {message}");
    }
}

#[test]
fn a_target_role_of_another_account_is_accepted_and_one_of_another_partition_or_not_a_role_is_400_naming_target_role_arn(
) {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    for target in [TARGET, TARGET2, &role("same-account-target")] {
        let created = create(&app, "t", json!({ "targetRoleArn": target })).association();
        assert_eq!(created["targetRoleArn"], target);
        app.delete_association("c1", s(&created, "associationId"))
            .association();
    }

    let refused = [
        "arn:aws-cn:iam::111122223333:role/target",
        "arn:aws-us-gov:iam::111122223333:role/target",
        "arn:aws:iam::111122223333:user/target",
        "arn:aws:iam::111122223333:group/target",
        "arn:aws:sts::111122223333:assumed-role/target/session",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::1111:role/target",
        "arn:aws:iam:us-east-1:111122223333:role/target",
        "target",
    ];
    let long_name = format!("arn:aws:iam::111122223333:role/{}", "n".repeat(65));
    for target in refused.iter().copied().chain([long_name.as_str()]) {
        let message = create(&app, "refused", json!({ "targetRoleArn": target }))
            .error(400, "InvalidParameterException");
        assert!(
            message.contains("targetRoleArn"),
            "create {target}: {message}"
        );
        let message = app
            .update_association("c1", &id, &json!({ "targetRoleArn": target }))
            .error(400, "InvalidParameterException");
        assert!(
            message.contains("targetRoleArn"),
            "update {target}: {message}"
        );
    }
    assert_eq!(app.describe_association("c1", &id).association(), a);
    assert_eq!(
        app.list_all_associations("c1", &[]).len(),
        1,
        "nothing created"
    );
}

#[test]
fn an_external_id_is_a_uuid_generated_with_the_first_target_role_kept_while_one_is_set_and_removed_when_it_is_cleared(
) {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    assert_absent(&a, &["targetRoleArn", "externalId"]);

    let set = app
        .update_association("c1", &id, &json!({ "targetRoleArn": TARGET }))
        .association();
    assert_eq!(set["targetRoleArn"], TARGET);
    let first = external_id(&set);
    assert_eq!(app.describe_association("c1", &id).association(), set);

    let role_changed = app
        .update_association("c1", &id, &json!({ "roleArn": role("r2") }))
        .association();
    assert_eq!(external_id(&role_changed), first, "a role change keeps it");

    let retargeted = app
        .update_association("c1", &id, &json!({ "targetRoleArn": TARGET2 }))
        .association();
    assert_eq!(retargeted["targetRoleArn"], TARGET2);
    assert_eq!(
        external_id(&retargeted),
        first,
        "another target role keeps it"
    );

    let cleared = app
        .update_association("c1", &id, &json!({ "targetRoleArn": "" }))
        .association();
    assert_absent(&cleared, &["targetRoleArn", "externalId"]);
    assert_eq!(app.describe_association("c1", &id).association(), cleared);

    let again = app
        .update_association("c1", &id, &json!({ "targetRoleArn": TARGET }))
        .association();
    let second = external_id(&again);
    assert_ne!(
        second, first,
        "a new target role after clearing gets a new externalId"
    );

    // Each association has its own.
    let other = create(&app, "other", json!({ "targetRoleArn": TARGET })).association();
    let third = external_id(&other);
    assert_ne!(third, second);
    assert_ne!(third, first);
    assert_eq!(
        external_id(
            &app.describe_association("c1", s(&other, "associationId"))
                .association()
        ),
        third
    );
}

#[test]
fn an_external_id_sent_by_the_client_is_never_stored() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let mine = "my-own-external-id";
    for (sa, members) in [
        (
            "with-target",
            json!({ "targetRoleArn": TARGET, "externalId": mine }),
        ),
        ("without-target", json!({ "externalId": mine })),
    ] {
        let answer = create(&app, sa, members);
        if answer.status == 200 {
            let created = answer.association();
            assert_ne!(created["externalId"], mine);
            let described = app
                .describe_association("c1", s(&created, "associationId"))
                .association();
            assert_eq!(described, created);
            if sa == "with-target" {
                external_id(&described);
            } else {
                assert_absent(&described, &["externalId"]);
            }
        } else {
            answer.error(400, "InvalidParameterException");
        }
    }
    let answer = app.update_association("c1", &id, &json!({ "externalId": mine }));
    if answer.status != 200 {
        answer.error(400, "InvalidParameterException");
    }
    assert_absent(
        &app.describe_association("c1", &id).association(),
        &["externalId"],
    );
}

#[test]
fn members_an_update_omits_are_left_unchanged_and_an_empty_string_clears_target_role_arn_or_policy()
{
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let full = create(
        &app,
        "app",
        json!({ "targetRoleArn": TARGET, "disableSessionTags": true, "policy": POLICY }),
    )
    .association();
    let id = s(&full, "associationId").to_owned();
    assert_eq!(full["policy"], POLICY);
    assert_eq!(full["targetRoleArn"], TARGET);
    assert_eq!(full["disableSessionTags"], true);
    let external = external_id(&full);

    let role_only = app
        .update_association("c1", &id, &json!({ "roleArn": role("r2") }))
        .association();
    for member in [
        "targetRoleArn",
        "externalId",
        "disableSessionTags",
        "policy",
        "tags",
    ] {
        assert_eq!(
            role_only[member], full[member],
            "{member} after a role-only update"
        );
    }
    assert_eq!(
        app.update_association("c1", &id, &json!({})).association(),
        role_only,
        "an empty update changes nothing"
    );

    let no_policy = app
        .update_association("c1", &id, &json!({ "policy": "" }))
        .association();
    assert_absent(&no_policy, &["policy"]);
    assert_eq!(no_policy["targetRoleArn"], TARGET);
    assert_eq!(external_id(&no_policy), external);
    assert_eq!(no_policy["disableSessionTags"], true);
    assert_eq!(no_policy["roleArn"], role("r2"));

    let no_target = app
        .update_association("c1", &id, &json!({ "targetRoleArn": "" }))
        .association();
    assert_absent(&no_target, &["policy", "targetRoleArn", "externalId"]);
    assert_eq!(no_target["disableSessionTags"], true);
    assert_eq!(no_target["roleArn"], role("r2"));
    assert_eq!(app.describe_association("c1", &id).association(), no_target);

    // Clearing what is not set changes nothing.
    let again = app
        .update_association("c1", &id, &json!({ "targetRoleArn": "", "policy": "" }))
        .association();
    assert_eq!(again, no_target);
}

#[test]
fn a_policy_needs_disable_session_tags_true_on_create_and_on_every_update() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    #[track_caller]
    fn refused(answer: crate::helpers::Answer, what: &str) {
        let message = answer.error(400, "InvalidParameterException");
        assert!(
            message.contains("policy") && message.contains("disableSessionTags"),
            "{what}: the message must say a policy needs disableSessionTags: {message}"
        );
    }

    refused(
        create(&app, "p1", json!({ "policy": POLICY })),
        "create without disableSessionTags",
    );
    refused(
        create(
            &app,
            "p2",
            json!({ "policy": POLICY, "disableSessionTags": false }),
        ),
        "create with disableSessionTags false",
    );
    assert_eq!(
        app.list_all_associations("c1", &[]).len(),
        1,
        "nothing created"
    );

    refused(
        app.update_association("c1", &id, &json!({ "policy": POLICY })),
        "update adding a policy",
    );
    refused(
        app.update_association(
            "c1",
            &id,
            &json!({ "policy": POLICY, "disableSessionTags": false }),
        ),
        "update adding a policy with disableSessionTags false",
    );
    assert_eq!(app.describe_association("c1", &id).association(), a);

    let with_policy = app
        .update_association(
            "c1",
            &id,
            &json!({ "policy": POLICY, "disableSessionTags": true }),
        )
        .association();
    assert_eq!(with_policy["policy"], POLICY);
    assert_eq!(with_policy["disableSessionTags"], true);

    // Turning session tags back on while a policy is stored is refused too.
    refused(
        app.update_association("c1", &id, &json!({ "disableSessionTags": false })),
        "update enabling session tags under a policy",
    );
    assert_eq!(
        app.describe_association("c1", &id).association(),
        with_policy
    );

    // ... unless the same update removes the policy.
    let both = app
        .update_association(
            "c1",
            &id,
            &json!({ "disableSessionTags": false, "policy": "" }),
        )
        .association();
    assert_eq!(both["disableSessionTags"], false);
    assert_absent(&both, &["policy"]);

    let created = create(
        &app,
        "p3",
        json!({ "policy": POLICY, "disableSessionTags": true }),
    )
    .association();
    assert_eq!(created["policy"], POLICY);
}

#[test]
fn a_policy_must_be_a_json_object_of_at_most_2048_characters() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    // `{"k":"…"}` is 8 characters around the value.
    let sized = |chars: usize, fill: &str| format!(r#"{{"k":"{}"}}"#, fill.repeat(chars - 8));
    let at_limit = sized(2048, "x");
    let at_limit_wide = sized(2048, "é");
    let over_limit = sized(2049, "x");
    let over_limit_wide = sized(2049, "é");
    assert_eq!(at_limit_wide.chars().count(), 2048);
    assert!(at_limit_wide.len() > 2048, "more bytes than characters");

    let not_objects = [
        "[]",
        r#"[{"Version":"2012-10-17"}]"#,
        "{",
        r#"{"Version":"2012-10-17""#,
        "not json",
        "null",
        r#""a string""#,
        "5",
        "true",
        r#"{"a":1} {"b":2}"#,
    ];
    for policy in not_objects {
        let message = create(
            &app,
            "p",
            json!({ "policy": policy, "disableSessionTags": true }),
        )
        .error(400, "InvalidParameterException");
        assert!(
            message.contains("policy") && message.contains("JSON"),
            "{policy}: {message}"
        );
        let message = app
            .update_association(
                "c1",
                &id,
                &json!({ "policy": policy, "disableSessionTags": true }),
            )
            .error(400, "InvalidParameterException");
        assert!(message.contains("policy"), "update {policy}: {message}");
    }
    for policy in [&over_limit, &over_limit_wide] {
        let message = create(
            &app,
            "p",
            json!({ "policy": policy, "disableSessionTags": true }),
        )
        .error(400, "InvalidParameterException");
        assert!(
            message.contains("policy") && (message.contains("2048") || message.contains("2,048")),
            "2049 characters: {message}"
        );
        let message = app
            .update_association(
                "c1",
                &id,
                &json!({ "policy": policy, "disableSessionTags": true }),
            )
            .error(400, "InvalidParameterException");
        assert!(message.contains("policy"), "{message}");
    }
    assert_eq!(
        app.describe_association("c1", &id).association(),
        a,
        "refusals changed nothing"
    );
    assert_eq!(
        app.list_all_associations("c1", &[]).len(),
        1,
        "refusals created nothing"
    );

    let pretty = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}";
    for (i, policy) in ["{}", pretty, &at_limit, &at_limit_wide]
        .into_iter()
        .enumerate()
    {
        let created = create(
            &app,
            &format!("ok-{i}"),
            json!({ "policy": policy, "disableSessionTags": true }),
        )
        .association();
        assert_eq!(created["policy"], policy, "kept as sent");
        let updated = app
            .update_association(
                "c1",
                &id,
                &json!({ "policy": policy, "disableSessionTags": true }),
            )
            .association();
        assert_eq!(updated["policy"], policy);
        assert_eq!(
            app.describe_association("c1", s(&created, "associationId"))
                .association()["policy"],
            policy
        );
    }
}

#[test]
fn owner_arn_never_appears_in_any_answer() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let created = create(
        &app,
        "app",
        json!({ "targetRoleArn": TARGET, "disableSessionTags": true, "policy": POLICY }),
    )
    .association();
    let id = s(&created, "associationId").to_owned();
    let updated = app
        .update_association("c1", &id, &json!({ "roleArn": role("r2") }))
        .association();
    let described = app.describe_association("c1", &id).association();
    let listed = app.list_all_associations("c1", &[]);
    let deleted = app.delete_association("c1", &id).association();
    for (what, a) in [
        ("create", &created),
        ("update", &updated),
        ("describe", &described),
        ("list", &listed[0]),
        ("delete", &deleted),
    ] {
        assert!(a.get("ownerArn").is_none(), "{what}: {a}");
    }
}

#[test]
fn session_members_survive_a_restart() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let created = create(
        &app,
        "app",
        json!({ "targetRoleArn": TARGET, "disableSessionTags": true, "policy": POLICY }),
    )
    .association();
    let plain = app.given_association("c1", "default", "plain", &role("r1"));
    let updated = app
        .update_association(
            "c1",
            s(&plain, "associationId"),
            &json!({ "targetRoleArn": TARGET2, "disableSessionTags": true }),
        )
        .association();
    app.restart();
    assert_eq!(
        app.describe_association("c1", s(&created, "associationId"))
            .association(),
        created
    );
    assert_eq!(
        app.describe_association("c1", s(&plain, "associationId"))
            .association(),
        updated
    );
    // The externalId stays the same through the restart and a later change.
    let later = app
        .update_association(
            "c1",
            s(&created, "associationId"),
            &json!({ "targetRoleArn": TARGET2 }),
        )
        .association();
    assert_eq!(later["externalId"], created["externalId"]);
}

#[test]
fn an_update_changing_only_a_session_member_moves_modified_at_and_keeps_created_at() {
    let (app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let mut previous = a.clone();
    let changes = [
        json!({ "disableSessionTags": true }),
        json!({ "disableSessionTags": false }),
        json!({ "targetRoleArn": TARGET }),
        json!({ "targetRoleArn": TARGET2 }),
        json!({ "targetRoleArn": "" }),
        json!({ "disableSessionTags": true, "policy": POLICY }),
        json!({ "policy": "{}" }),
        json!({ "policy": "" }),
    ];
    for change in changes {
        let updated = app.update_association("c1", &id, &change).association();
        assert_eq!(updated["createdAt"], a["createdAt"], "{change}");
        assert!(
            ts(&updated, "modifiedAt") > ts(&previous, "modifiedAt"),
            "{change}: modifiedAt must move forward: {previous} then {updated}"
        );
        // Sending the same values again changes nothing, modifiedAt included.
        let same = app.update_association("c1", &id, &change).association();
        assert_eq!(same, updated, "{change} again");
        previous = updated;
    }
}

#[test]
fn a_retried_update_with_session_members_returns_its_first_answer_and_a_retried_create_keeps_its_external_id(
) {
    let (mut app, a) = setup();
    let id = s(&a, "associationId").to_owned();
    let request = json!({
        "targetRoleArn": TARGET,
        "disableSessionTags": true,
        "policy": POLICY,
        "clientRequestToken": TOKEN,
    });
    let first = app.update_association("c1", &id, &request).association();
    let external = external_id(&first);
    assert_eq!(
        app.update_association("c1", &id, &request).association(),
        first
    );

    let later = app
        .update_association(
            "c1",
            &id,
            &json!({ "targetRoleArn": "", "policy": "", "disableSessionTags": false }),
        )
        .association();
    assert_absent(&later, &["targetRoleArn", "externalId", "policy"]);
    let retry = app.update_association("c1", &id, &request).association();
    assert_eq!(retry, first, "the first answer, its externalId included");
    assert_eq!(
        app.describe_association("c1", &id).association(),
        later,
        "the retry changed nothing"
    );
    app.restart();
    assert_eq!(
        app.update_association("c1", &id, &request).association(),
        first
    );
    assert_eq!(app.describe_association("c1", &id).association(), later);

    // The same token with another policy is another request: refused.
    let mut other = request.clone();
    other["policy"] = json!("{}");
    let message = app
        .update_association("c1", &id, &other)
        .error(400, "InvalidParameterException");
    assert!(message.contains(TOKEN), "{message}");

    // A retried create answers the same externalId, not a new one.
    let create_request = json!({
        "namespace": "default",
        "serviceAccount": "retried",
        "roleArn": role("r1"),
        "targetRoleArn": TARGET,
        "clientRequestToken": TOKEN,
    });
    let created = app.create_association("c1", &create_request).association();
    let created_external = external_id(&created);
    assert_ne!(created_external, external);
    assert_eq!(
        app.create_association("c1", &create_request).association(),
        created
    );
    assert_eq!(
        external_id(
            &app.describe_association("c1", s(&created, "associationId"))
                .association()
        ),
        created_external
    );
}

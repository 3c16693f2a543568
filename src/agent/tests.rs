use super::*;

#[test]
fn answers_are_kept_until_five_minutes_before_expiry_or_half_their_life() {
    let now = Timestamp::from_millis(1_000_000);
    assert_eq!(
        stale_at(now, now.plus_seconds(3600)),
        now.plus_seconds(3600 - 300)
    );
    assert_eq!(stale_at(now, now.plus_seconds(400)), now.plus_seconds(200));
    assert_eq!(stale_at(now, now), now);
}

#[test]
fn the_account_comes_from_the_assumed_role_arn_and_expiration_is_iso8601() {
    let answer: AssumeRoleAnswer = serde_json::from_value(serde_json::json!({
        "assumedRoleUser": {"arn": "arn:aws:sts::111122223333:assumed-role/app/eks-c-p-1", "assumeRoleId": "AROA:s"},
        "credentials": {"accessKeyId": "ASIA", "secretAccessKey": "s", "sessionToken": "t", "expiration": 1_764_939_829.5},
    }))
    .unwrap();
    let credentials = container_credentials(answer).unwrap();
    assert_eq!(credentials.account_id, "111122223333");
    assert_eq!(credentials.expiration, "2025-12-05T13:03:49Z");
    let json = serde_json::to_value(&credentials).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "AccountId",
            "Expiration",
            "SecretAccessKey",
            "Token"
        ]
    );
}

#[test]
fn an_arn_without_an_account_is_a_bad_answer() {
    let answer: AssumeRoleAnswer = serde_json::from_value(serde_json::json!({
        "assumedRoleUser": {"arn": "not-an-arn"},
        "credentials": {"accessKeyId": "a", "secretAccessKey": "s", "sessionToken": "t", "expiration": 1.0},
    }))
    .unwrap();
    assert!(container_credentials(answer)
        .unwrap_err()
        .contains("not-an-arn"));
}

#[test]
fn a_key_needs_both_halves() {
    assert!(key_from_flags(None, None, None).unwrap().is_none());
    assert!(key_from_flags(Some("a".into()), Some("b".into()), None)
        .unwrap()
        .is_some());
    assert!(key_from_flags(Some("a".into()), None, None).is_err());
    assert!(key_from_flags(None, None, Some("t".into())).is_err());
}

#[test]
fn signed_calls_carry_a_sigv4_authorization_for_eks_auth() {
    let key = Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "t");
    let headers = sign(
        "http://127.0.0.1:1/clusters/c/assume-role-for-pod-identity",
        "{}",
        &key,
        "us-east-1",
    )
    .unwrap();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let auth = get("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/eks-auth/aws4_request"), "{auth}");
    assert!(auth.contains("content-type;host;x-amz-date"), "{auth}");
    assert_eq!(get("x-amz-security-token").as_deref(), Some("tok"));
}

//! The export file's tests: a round trip, and each way a file is refused.

use super::*;

fn identity() -> AwsIdentity {
    AwsIdentity::new("us-east-1", "123456789012")
}

fn role(name: &str) -> RoleArn {
    RoleArn::parse_in_account(
        "roleArn",
        &format!("arn:aws:iam::123456789012:role/{name}"),
        &identity(),
    )
    .unwrap()
}

/// A cluster with every member set.
fn cluster(name: &str) -> Cluster {
    Cluster {
        name: ClusterName::parse("name", name).unwrap(),
        role_arn: role("eks"),
        version: "1.33".into(),
        tags: Tags::parse("tags", [("team".into(), "a".into())].into()).unwrap(),
        created_at: Timestamp::from_millis(1_700_000_000_123),
        status: ClusterStatus::Creating,
        activate_at: Some(Timestamp::from_millis(1_700_000_005_000)),
    }
}

/// An association with every member set.
fn association(cluster: &str, id: &str, sa: &str) -> Association {
    Association {
        cluster: ClusterName::parse("name", cluster).unwrap(),
        id: AssociationId::parse(id).unwrap(),
        namespace: Namespace::parse("default").unwrap(),
        service_account: ServiceAccountName::parse(sa).unwrap(),
        role_arn: role("app"),
        tags: Tags::parse("tags", [("k".into(), "v \"quoted\"".into())].into()).unwrap(),
        created_at: Timestamp::from_millis(1_700_000_000_001),
        modified_at: Timestamp::from_millis(1_700_000_000_002),
        disable_session_tags: true,
        target_role_arn: Some(role("target")),
        external_id: Some("0b7d2a3e-0000-4000-8000-000000000000".into()),
        policy: Some(SessionPolicy::parse(r#"{"Version":"2012-10-17"}"#).unwrap()),
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        taken_at: Timestamp::from_millis(1_800_000_000_000),
        clusters: vec![cluster("c1"), cluster("c2")],
        associations: vec![
            association("c1", "a-aaaaaaaaaaaaaaaaa", "app"),
            association("c2", "a-bbbbbbbbbbbbbbbbb", "app"),
        ],
    }
}

fn export_text(snapshot: Snapshot) -> String {
    let bytes: Vec<u8> = ExportLines::new(snapshot, &identity()).flatten().collect();
    String::from_utf8(bytes).unwrap()
}

fn read_text(text: &str) -> Result<ExportFile, FileError> {
    read(text.as_bytes(), &identity(), 5000)
}

fn line_error(text: &str) -> (u64, String) {
    match read_text(text) {
        Err(FileError::Line { line, message }) => (line, message),
        other => panic!("expected a line error, got {other:?}"),
    }
}

/// The export with line `number` (1-based) replaced by `replacement`.
fn with_line(number: usize, replacement: &str) -> String {
    let text = export_text(snapshot());
    let mut lines: Vec<&str> = text.lines().collect();
    lines[number - 1] = replacement;
    lines.join("\n") + "\n"
}

#[test]
fn an_export_reads_back_as_the_same_clusters_and_associations() {
    let snapshot = snapshot();
    let file = read_text(&export_text(snapshot.clone())).unwrap();
    assert_eq!(file.clusters, snapshot.clusters);
    assert_eq!(file.associations, snapshot.associations);
    assert_eq!(file.header.version, VERSION);
    assert_eq!(file.header.exported_at, 1_800_000_000_000);
}

#[test]
fn the_header_comes_first_and_the_end_line_last_with_the_counts() {
    let text = export_text(snapshot());
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["format"], FORMAT);
    assert_eq!(lines[0]["schema"], migrate::LATEST);
    assert_eq!(lines[1]["type"], "cluster");
    assert_eq!(lines[1]["createdAt"], 1_700_000_000_123_i64);
    assert_eq!(lines[3]["type"], "association");
    assert_eq!(lines[3]["tags"]["k"], "v \"quoted\"");
    assert_eq!(
        lines[5],
        serde_json::json!({"type": "end", "clusters": 2, "associations": 2})
    );
}

#[test]
fn a_malformed_line_is_refused_naming_its_number() {
    let (line, message) = line_error(&with_line(3, "{\"type\":\"cluster\""));
    assert_eq!(line, 3);
    assert!(message.contains("not valid JSON"), "{message}");
    let (line, message) = line_error(&with_line(2, r#"{"type":"bucket"}"#));
    assert_eq!(line, 2);
    assert!(message.contains("unknown variant"), "{message}");
}

#[test]
fn a_member_that_breaks_an_api_rule_is_refused_with_the_rule() {
    let text =
        export_text(snapshot()).replace("\"namespace\":\"default\"", "\"namespace\":\"Default\"");
    let (line, message) = line_error(&text);
    assert_eq!(line, 4);
    assert!(
        message.contains("not a valid Kubernetes namespace"),
        "{message}"
    );
}

#[test]
fn an_unknown_member_is_refused() {
    let text = export_text(snapshot()).replacen(
        "\"name\":\"c1\"",
        "\"name\":\"c1\",\"colour\":\"red\"",
        1,
    );
    let (line, message) = line_error(&text);
    assert_eq!(line, 2);
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn a_file_without_its_end_line_is_refused_as_cut_short() {
    let text = export_text(snapshot());
    let cut: Vec<&str> = text.lines().take(4).collect();
    assert!(matches!(
        read_text(&(cut.join("\n") + "\n")),
        Err(FileError::Truncated { lines: 4 })
    ));
    assert!(matches!(read_text(""), Err(FileError::Empty)));
}

#[test]
fn an_end_line_with_other_counts_or_a_line_after_it_is_refused() {
    let (line, _) = line_error(&with_line(
        6,
        r#"{"type":"end","clusters":2,"associations":3}"#,
    ));
    assert_eq!(line, 6);
    let second_line = export_text(snapshot()).lines().nth(1).unwrap().to_owned();
    let text = export_text(snapshot()) + second_line.as_str();
    let (line, message) = line_error(&text);
    assert_eq!(line, 7);
    assert!(message.contains("after the end line"), "{message}");
}

#[test]
fn an_association_needs_its_cluster_on_an_earlier_line_and_its_own_service_account() {
    let mut s = snapshot();
    s.associations[1] = association("c9", "a-bbbbbbbbbbbbbbbbb", "app");
    let (line, message) = line_error(&export_text(s));
    assert_eq!(line, 5);
    assert!(message.contains("c9"), "{message}");

    let mut s = snapshot();
    s.associations[1] = association("c1", "a-bbbbbbbbbbbbbbbbb", "app");
    let (line, message) = line_error(&export_text(s));
    assert_eq!(line, 5);
    assert!(message.contains("line 4"), "{message}");

    let mut s = snapshot();
    s.associations[1] = association("c1", "a-aaaaaaaaaaaaaaaaa", "other");
    let (line, message) = line_error(&export_text(s));
    assert_eq!(line, 5);
    assert!(message.contains("already on line 4"), "{message}");
}

#[test]
fn a_newer_format_or_another_identity_is_refused_on_line_1() {
    let (line, message) = line_error(&with_line(
        1,
        r#"{"format":"pod-identity-store-export","version":2,"whatever":true}"#,
    ));
    assert_eq!(line, 1);
    assert!(message.contains("newer pod-identity-store"), "{message}");
    let text = export_text(snapshot()).replacen("123456789012\"}", "111122223333\"}", 1);
    let (line, message) = line_error(&text);
    assert_eq!(line, 1);
    assert!(message.contains("account 111122223333"), "{message}");
    let (line, _) = line_error(&with_line(1, r#"{"type":"cluster"}"#));
    assert_eq!(line, 1);
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_whole() {
    let text = format!(
        "{}{}\n",
        export_text(snapshot()).lines().next().unwrap().to_owned() + "\n",
        "x".repeat(MAX_LINE_BYTES + 10)
    );
    let (line, message) = line_error(&text);
    assert_eq!(line, 2);
    assert!(message.contains("longer than"), "{message}");
}

#[test]
fn a_cluster_over_the_association_limit_is_refused_naming_the_first_one() {
    let mut s = snapshot();
    s.clusters.push(cluster("c3"));
    s.associations = ["c1", "c2", "c2", "c3", "c3"]
        .iter()
        .enumerate()
        .map(|(n, c)| association(c, &format!("a-{n:017}"), &format!("sa{n}")))
        .collect();
    let text = export_text(s);
    let (line, message) = match read(text.as_bytes(), &identity(), 1) {
        Err(FileError::Line { line, message }) => (line, message),
        other => panic!("expected a line error, got {other:?}"),
    };
    assert_eq!(line, 7, "{message}");
    assert!(
        message.contains("cluster c2 has more than 1 associations")
            && message.contains("limits.associations_per_cluster"),
        "{message}"
    );
    let summary = check(text.as_bytes(), &identity(), 2, |_| {}).unwrap();
    assert_eq!(summary.associations, 5);
    assert_eq!(summary.counts[&cluster("c2").name], 2);
    assert_eq!(summary.clusters.len(), 3);
}

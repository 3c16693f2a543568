//! The config file: refusals that name the setting, presets, identity, limits.

use std::ffi::OsString;

use serde_json::json;

use crate::helpers::{command, role, run_to_exit, s, Client, Server, TestApp};

/// Starts the server with `toml` as its config file, expecting it to refuse.
fn refused_config(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let exit = run_to_exit(command(
        &[
            OsString::from("--listen"),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("data").into(),
            "--config".into(),
            file.into(),
        ],
        &[],
    ));
    assert!(
        !exit.status.success(),
        "started with {toml:?}: {}",
        exit.stdout
    );
    assert!(
        !exit.stdout.contains("listening"),
        "served with {toml:?}: {}",
        exit.stdout
    );
    assert!(
        !dir.path().join("data").join("db").exists(),
        "a refused start must not create the store"
    );
    exit.stderr
}

#[test]
fn an_unknown_config_key_stops_start_up_with_a_message_naming_it() {
    for (toml, key) in [
        ("[server]\nlisten_on = \"127.0.0.1:0\"\n", "listen_on"),
        ("[clusters]\nactivation_delay = 5\n", "activation_delay"),
        ("[database]\npath = \"x\"\n", "database"),
        ("verbose = true\n", "verbose"),
        (
            "[[clusters.preset]]\nname = \"dev\"\ncolour = \"blue\"\n",
            "colour",
        ),
    ] {
        let stderr = refused_config(toml);
        assert!(stderr.contains(key), "{toml:?}: {stderr}");
    }
}

#[test]
fn a_bad_config_value_stops_start_up_with_a_message_naming_the_setting() {
    for (toml, names) in [
        ("[server]\nlisten = \"nowhere\"\n", "listen"),
        ("[server]\nmax_body_bytes = 0\n", "max_body_bytes"),
        (
            "[clusters]\nactivation_delay_ms = \"soon\"\n",
            "activation_delay_ms",
        ),
        ("[clusters]\nwritable_states = [\"RUNNING\"]\n", "RUNNING"),
        ("[aws]\naccount_id = \"12345\"\n", "account_id"),
        ("[aws]\nregion = \"mars\"\n", "region"),
        (
            "[idempotency]\ntoken_ttl_seconds = 0\n",
            "token_ttl_seconds",
        ),
        ("[[clusters.preset]]\nname = \"-dev\"\n", "preset"),
        (
            "[[clusters.preset]]\nname = \"dev\"\nstatus = \"GONE\"\n",
            "GONE",
        ),
        ("not toml at all", "config"),
        (
            "[store]\ncache_capacity_bytes = 0\n",
            "cache_capacity_bytes",
        ),
        (
            "[store]\ncache_capacity_bytes = 1099511627777\n",
            "cache_capacity_bytes",
        ),
        (
            "[store]\ncache_capacity_bytes = \"64MiB\"\n",
            "cache_capacity_bytes",
        ),
        (
            "[store]\nsegment_cleaning_interval_ms = 60001\n",
            "segment_cleaning_interval_ms",
        ),
    ] {
        let stderr = refused_config(toml);
        assert!(stderr.contains(names), "{toml:?}: {stderr}");
    }
}

#[test]
fn a_missing_config_file_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-config.toml");
    let exit = run_to_exit(command(
        &[
            OsString::from("--listen"),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("data").into(),
            "--config".into(),
            missing.into(),
        ],
        &[],
    ));
    assert!(!exit.status.success());
    assert!(
        exit.stderr.contains("no-such-config.toml"),
        "{}",
        exit.stderr
    );
}

#[test]
fn preset_clusters_exist_after_start_and_existing_ones_are_left_as_they_are() {
    let mut app = TestApp::spawn_with_config(
        "[[clusters.preset]]\nname = \"dev\"\n\n\
         [[clusters.preset]]\nname = \"broken\"\nstatus = \"FAILED\"\n",
    );
    assert_eq!(app.describe_cluster("dev").cluster()["status"], "ACTIVE");
    assert_eq!(app.describe_cluster("broken").cluster()["status"], "FAILED");
    assert_eq!(
        app.list_clusters("").ok()["clusters"],
        json!(["broken", "dev"])
    );
    let a = app.given_association("dev", "default", "app", &role("r"));
    app.create_association(
        "broken",
        &json!({ "namespace": "default", "serviceAccount": "app", "roleArn": role("r") }),
    )
    .error(400, "InvalidRequestException");

    // On the next start, the existing presets (and their data) stay as they are.
    app.set_cluster_status("dev", "UPDATING").cluster();
    app.restart();
    assert_eq!(app.describe_cluster("dev").cluster()["status"], "UPDATING");
    assert_eq!(app.describe_cluster("broken").cluster()["status"], "FAILED");
    assert_eq!(
        app.describe_association("dev", s(&a, "associationId"))
            .association(),
        a
    );
}

#[test]
fn the_account_and_region_from_the_config_file_are_in_every_arn_and_decide_which_roles_are_accepted(
) {
    let app = TestApp::spawn_with_config(
        "[aws]\nregion = \"cn-north-1\"\naccount_id = \"111122223333\"\n",
    );
    let own_role = "arn:aws-cn:iam::111122223333:role/app";
    let cluster = app
        .create_cluster_with(&json!({
            "name": "c1", "roleArn": "arn:aws-cn:iam::111122223333:role/eks", "resourcesVpcConfig": {},
        }))
        .cluster();
    assert_eq!(
        cluster["arn"],
        "arn:aws-cn:eks:cn-north-1:111122223333:cluster/c1"
    );
    let a = app.given_association("c1", "default", "app", own_role);
    let id = s(&a, "associationId");
    assert_eq!(
        a["associationArn"],
        format!("arn:aws-cn:eks:cn-north-1:111122223333:podidentityassociation/c1/{id}")
    );
    // The default account's role, or one of the aws partition, is refused.
    for other in [role("app"), "arn:aws:iam::111122223333:role/app".into()] {
        let message = app
            .update_association("c1", id, &json!({ "roleArn": other }))
            .error(400, "InvalidParameterException");
        assert!(message.contains("roleArn"), "{message}");
    }
    assert_eq!(app.describe_association("c1", id).association(), a);
}

#[test]
fn max_body_bytes_from_the_config_file_limits_request_bodies() {
    let app = TestApp::spawn_with_config("[server]\nmax_body_bytes = 2048\n");
    app.given_cluster("c1");
    let body = |padding: usize| {
        json!({
            "namespace": "default",
            "serviceAccount": format!("sa-{padding}"),
            "roleArn": role("r"),
            "tags": { "padding": "x".repeat(padding) },
        })
    };
    app.create_association("c1", &body(200)).association();
    app.create_association("c1", &body(3000))
        .error(413, "RequestEntityTooLargeException");
    // Exactly at the limit is accepted, one byte more is not.
    let exact = |len: usize, sa: &str| {
        let mut bytes = serde_json::to_vec(&json!({
            "namespace": "default", "serviceAccount": sa, "roleArn": role("r"),
        }))
        .unwrap();
        bytes.pop(); // the closing brace
                     // A member the server does not know (ignored, as newer clients send them).
        bytes.extend_from_slice(b",\"padding\":\"");
        let fill = len - bytes.len() - 2;
        bytes.resize(bytes.len() + fill, b'x');
        bytes.extend_from_slice(b"\"}");
        assert_eq!(bytes.len(), len);
        bytes
    };
    let path = "/clusters/c1/pod-identity-associations";
    app.request(
        "POST",
        path,
        Some("application/json"),
        Some(&exact(2049, "edge")),
    )
    .error(413, "RequestEntityTooLargeException");
    app.request(
        "POST",
        path,
        Some("application/json"),
        Some(&exact(2048, "edge")),
    )
    .association();
    // It was not stored: a smaller request for the same service account works.
    let mut smaller = body(3000);
    smaller["tags"] = json!({});
    app.create_association("c1", &smaller).association();
}

#[test]
fn the_config_file_can_be_named_by_the_environment_and_the_flag_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = dir.path().join("env.toml");
    let from_flag = dir.path().join("flag.toml");
    std::fs::write(&from_env, "[[clusters.preset]]\nname = \"from-env\"\n").unwrap();
    std::fs::write(&from_flag, "[[clusters.preset]]\nname = \"from-flag\"\n").unwrap();
    let log = dir.path().join("server.log");
    let base = |data: &str| -> Vec<OsString> {
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join(data).into(),
        ]
    };
    let env = [(
        "POD_IDENTITY_STORE_CONFIG",
        from_env.clone().into_os_string(),
    )];

    let server = Server::start(command(&base("one"), &env), &log).unwrap();
    let client = Client::new(server.addr);
    assert_eq!(
        client.list_clusters("").ok()["clusters"],
        json!(["from-env"])
    );
    drop(server);

    let mut args = base("two");
    args.push("--config".into());
    args.push(from_flag.into());
    let server = Server::start(command(&args, &env), &log).unwrap();
    let client = Client::new(server.addr);
    assert_eq!(
        client.list_clusters("").ok()["clusters"],
        json!(["from-flag"])
    );
}

#[test]
fn the_store_cache_size_can_be_set_in_the_config_file_or_by_the_environment() {
    let app = TestApp::spawn_with_config("[store]\ncache_capacity_bytes = 16777216\n");
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("r"));
    assert_eq!(
        app.describe_association("c1", s(&a, "associationId"))
            .association(),
        a
    );

    let app =
        TestApp::spawn_with_env(&[("POD_IDENTITY_STORE_CACHE_CAPACITY_BYTES", "1048576".into())]);
    app.given_cluster("c1");

    // The same rule holds for the environment as for the file.
    let dir = tempfile::tempdir().unwrap();
    let exit = run_to_exit(command(
        &[
            OsString::from("--listen"),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("data").into(),
        ],
        &[("POD_IDENTITY_STORE_CACHE_CAPACITY_BYTES", "0".into())],
    ));
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(
        exit.stderr
            .contains("invalid setting store.cache_capacity_bytes = 0"),
        "{}",
        exit.stderr
    );
}

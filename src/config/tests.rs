use super::*;

#[test]
fn config_default_toml_documents_exactly_the_defaults_in_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    assert_eq!(Config::from_file(&path).unwrap(), Config::default());
}

#[test]
fn clock_control_is_off_unless_turned_on() {
    assert!(!Config::default().testing.clock_control);
    let config = Config::from_toml("[testing]\nclock_control = true\n").unwrap();
    assert!(config.testing.clock_control);
    let err = Config::from_toml("[testing]\nclock_control = 1\n").unwrap_err();
    assert!(err.contains("clock_control"), "{err}");
}

#[test]
fn an_unknown_key_is_refused_naming_it() {
    let err = Config::from_toml("[server]\nlisten_on = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(err.contains("listen_on"), "{err}");
}

#[test]
fn the_body_deadline_and_the_connection_bound_are_checked() {
    for (toml, key) in [
        (
            "body_read_timeout_seconds = 0",
            "server.body_read_timeout_seconds",
        ),
        (
            "body_read_timeout_seconds = 3601",
            "server.body_read_timeout_seconds",
        ),
        ("max_connections = 0", "server.max_connections"),
        ("max_connections = 1000001", "server.max_connections"),
    ] {
        let config = Config::from_toml(&format!("[server]\n{toml}\n")).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let config =
        Config::from_toml("[server]\nbody_read_timeout_seconds = 1\nmax_connections = 1\n")
            .unwrap();
    config.validate().unwrap();
}

#[test]
fn a_bad_value_is_refused_naming_the_key() {
    let err = Config::from_toml("[server]\nlisten = \"nowhere\"\n").unwrap_err();
    assert!(err.contains("listen"), "{err}");
    let err = Config::from_toml("[clusters]\nwritable_states = [\"RUNNING\"]\n").unwrap_err();
    assert!(err.contains("RUNNING"), "{err}");
    let mut config = Config::default();
    config.aws.account_id = "12345".into();
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("aws.account_id"));
    config = Config::default();
    config.aws.region = "mars".into();
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("aws.region"));
}

#[test]
fn overrides_beat_the_file_and_the_file_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9000\"\n[store]\ndata_dir = \"/from/file\"\n",
    )
    .unwrap();
    let config = Config::load(
        Some(&file),
        Overrides {
            listen: None,
            data_dir: Some("/from/flag".into()),
            cache_capacity_bytes: None,
            compression: None,
        },
    )
    .unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(config.store.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(config.aws, AwsConfig::default());
}

#[test]
fn presets_need_valid_unique_names_and_default_to_active() {
    let config = Config::from_toml("[[clusters.preset]]\nname = \"dev\"\n").unwrap();
    assert_eq!(config.clusters.preset[0].status, ClusterStatus::Active);
    let twice = Config::from_toml(
        "[[clusters.preset]]\nname = \"dev\"\n[[clusters.preset]]\nname = \"dev\"\n",
    )
    .unwrap();
    assert!(twice.validate().is_err());
    let bad = Config::from_toml("[[clusters.preset]]\nname = \"-dev\"\n").unwrap();
    assert!(bad.validate().is_err());
}

#[test]
fn the_sts_endpoint_is_optional_and_must_be_an_http_url() {
    let config =
        Config::from_toml("[eks_auth.sts]\nendpoint_url = \"http://127.0.0.1:5000\"\n").unwrap();
    assert_eq!(
        config.eks_auth.sts.endpoint_url.as_deref(),
        Some("http://127.0.0.1:5000")
    );
    config.validate().unwrap();
    assert_eq!(Config::default().eks_auth.sts.endpoint_url, None);
    for bad in [
        "sts.amazonaws.com",
        "ftp://x",
        "https://",
        "http:///x",
        "http://a b",
    ] {
        let mut config = Config::default();
        config.eks_auth.sts.endpoint_url = Some(bad.into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("eks_auth.sts.endpoint_url"), "{bad}: {err}");
    }
    let err = Config::from_toml("[eks_auth.sts]\nendpoint = \"http://x\"\n").unwrap_err();
    assert!(err.contains("endpoint"), "{err}");
}

#[test]
fn sigv4_needs_a_key_file_and_key_settings_need_sigv4() {
    let err = Config::from_toml("[auth]\nmode = \"sigv4\"\n")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid setting auth.credentials_file"),
        "{err}"
    );
    let err = Config::from_toml("[auth]\ncredentials_file = \"/etc/keys\"\n")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid setting auth.mode"), "{err}");
    let config = Config::from_toml(
        "[auth]\nmode = \"sigv4\"\ncredentials_file = \"/etc/keys\"\nadmin_access_key_ids = [\"AKID\"]\n",
    )
    .unwrap();
    config.validate().unwrap();
    let err = Config::from_toml("[auth]\nmode = \"iam\"\n").unwrap_err();
    assert!(err.contains("iam"), "{err}");
}

#[test]
fn a_non_loopback_listen_address_needs_auth_or_an_explicit_opt_out() {
    let mut config = Config::default();
    config.server.listen = "0.0.0.0:8080".parse().unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("invalid setting server.listen = 0.0.0.0:8080"),
        "{err}"
    );
    assert!(err.contains("auth.mode"), "{err}");
    assert!(err.contains("auth.allow_anonymous_remote"), "{err}");
    config.auth.allow_anonymous_remote = true;
    config.validate().unwrap();
    config.auth.allow_anonymous_remote = false;
    config.auth.mode = AuthMode::Sigv4;
    config.auth.credentials_file = Some("/etc/keys".into());
    config.validate().unwrap();
    for loopback in ["127.0.0.1:0", "127.0.0.2:80", "[::1]:8080"] {
        let mut config = Config::default();
        config.server.listen = loopback.parse().unwrap();
        config.validate().unwrap();
    }
}

#[test]
fn eks_auth_settings_default_to_local_for_an_hour_and_keep_stss_bounds() {
    let config = Config::default();
    assert_eq!(config.eks_auth.credentials, CredentialsKind::Local);
    assert_eq!(config.eks_auth.session_duration_seconds, 3600);
    let sts = Config::from_toml("[eks_auth]\ncredentials = \"sts\"\n").unwrap();
    assert_eq!(sts.eks_auth.credentials, CredentialsKind::Sts);
    let err = Config::from_toml("[eks_auth]\ncredentials = \"iam\"\n").unwrap_err();
    assert!(err.contains("iam"), "{err}");
    for (seconds, ok) in [(899, false), (900, true), (43_200, true), (43_201, false)] {
        let mut config = Config::default();
        config.eks_auth.session_duration_seconds = seconds;
        assert_eq!(config.validate().is_ok(), ok, "{seconds}");
    }
}

#[test]
fn tls_needs_both_files_or_neither() {
    let mut config = Config::default();
    config.server.tls.cert_file = Some("/etc/cert.pem".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("invalid setting server.tls.key_file"),
        "{err}"
    );
    config.server.tls = TlsConfig {
        cert_file: None,
        key_file: Some("/etc/key.pem".into()),
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("invalid setting server.tls.cert_file"),
        "{err}"
    );
    config.server.tls.cert_file = Some("/etc/cert.pem".into());
    config.validate().unwrap();
}

#[test]
fn fault_rules_are_off_by_default_and_a_bad_one_is_refused_naming_its_index_and_field() {
    assert!(Config::default().faults.rules.is_empty());
    let config = Config::from_toml(
        "[faults]\nseed = 7\n[[faults.rules]]\noperations = [\"*\"]\nkind = \"throttle\"\n\
         rate_per_second = 2.5\nburst = 3\n[[faults.rules]]\noperations = [\"ListClusters\"]\n\
         kind = \"error\"\nprobability = 1.5\n",
    )
    .unwrap();
    assert_eq!(config.faults.seed, 7);
    let err = config.validate().unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid setting faults.rules[1].probability must be a number from 0 to 1 (got 1.5)"
    );
    let err = Config::from_toml("[faults]\nrule = []\n").unwrap_err();
    assert!(err.contains("rule"), "{err}");
}

#[test]
fn the_public_url_defaults_to_the_listen_address_and_must_be_http() {
    let mut config = Config::default();
    let bound: SocketAddr = "127.0.0.1:4321".parse().unwrap();
    assert_eq!(config.server.public_url_or(bound), "http://127.0.0.1:4321");
    config.server.public_url = "https://pods.example.com/".into();
    assert!(config.validate().is_ok());
    assert_eq!(
        config.server.public_url_or(bound),
        "https://pods.example.com"
    );
    for bad in ["pods.example.com", "ftp://x", "https://x/?a=b"] {
        config.server.public_url = bad.into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("server.public_url"), "{err}");
    }
}

#[test]
fn region_names_follow_the_aws_pattern() {
    for ok in [
        "us-east-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-10",
    ] {
        assert!(is_region(ok), "{ok}");
    }
    for bad in ["", "us", "us-east", "US-EAST-1", "us--1"] {
        assert!(!is_region(bad), "{bad}");
    }
}

//! Start-up: schema versions, `migrate --dry-run`, setting precedence, the
//! data-dir lock and `--help`.

use std::ffi::OsString;
use std::path::Path;

use pod_identity_store::store::keys::{META_SCHEMA_VERSION, TREE_META};
use pod_identity_store::store::migrate::LATEST;

use crate::helpers::{command, run_to_exit, Client, Server, TestApp};

fn serve_args(data_dir: &Path) -> Vec<OsString> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.into(),
    ]
}

fn schema_version(data_dir: &Path) -> u32 {
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    let meta = db.open_tree(TREE_META).unwrap();
    let bytes = meta
        .get(META_SCHEMA_VERSION)
        .unwrap()
        .expect("a schema version");
    u32::from_be_bytes(bytes.as_ref().try_into().unwrap())
}

#[test]
fn a_store_written_with_a_newer_schema_version_is_refused_and_left_alone() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    app.kill();
    assert_eq!(schema_version(&app.data_dir), LATEST);
    {
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let meta = db.open_tree(TREE_META).unwrap();
        meta.insert(META_SCHEMA_VERSION, &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    let exit = run_to_exit(command(&serve_args(&app.data_dir), &[]));
    assert!(
        !exit.status.success(),
        "it served a newer store: {}",
        exit.stdout
    );
    assert!(!exit.stdout.contains("listening"), "{}", exit.stdout);
    assert!(
        exit.stderr.contains("schema version 99"),
        "the message must name the version: {}",
        exit.stderr
    );

    let mut dry_run: Vec<OsString> = vec!["migrate".into(), "--dry-run".into()];
    dry_run.extend(["--data-dir".into(), app.data_dir.clone().into()]);
    let exit = run_to_exit(command(&dry_run, &[]));
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(exit.stderr.contains("schema version 99"), "{}", exit.stderr);

    // Refusing changed nothing.
    assert_eq!(schema_version(&app.data_dir), 99);
}

#[test]
fn migrate_dry_run_on_a_fresh_dir_lists_the_initial_schema_and_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args: Vec<OsString> = vec![
        "migrate".into(),
        "--dry-run".into(),
        "--data-dir".into(),
        data.clone().into(),
    ];
    let exit = run_to_exit(command(&args, &[]));
    assert!(exit.status.success(), "{}", exit.stderr);
    assert!(
        exit.stdout.contains("0001-initial-schema"),
        "{}",
        exit.stdout
    );
    assert!(!data.join("db").exists(), "a dry run created the store");

    // A real migrate creates the store at the latest schema; then nothing is pending.
    let migrate: Vec<OsString> = vec!["migrate".into(), "--data-dir".into(), data.clone().into()];
    let exit = run_to_exit(command(&migrate, &[]));
    assert!(exit.status.success(), "{}", exit.stderr);
    assert!(data.join("db").exists());
    assert_eq!(schema_version(&data), LATEST);
    let exit = run_to_exit(command(&args, &[]));
    assert!(exit.status.success(), "{}", exit.stderr);
    assert!(
        !exit.stdout.contains("0001-initial-schema"),
        "{}",
        exit.stdout
    );
}

#[test]
fn the_data_dir_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("server.log");
    let dir = |name: &str| root.path().join(name);
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndata_dir = {:?}\n",
            dir("from-file").display().to_string()
        ),
    )
    .unwrap();
    let cwd = dir("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let listen: Vec<OsString> = vec!["--listen".into(), "127.0.0.1:0".into()];
    let with = |extra: &[OsString]| -> Vec<OsString> {
        listen
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect()
    };
    let env_data = (
        "POD_IDENTITY_STORE_DATA_DIR",
        dir("from-env").into_os_string(),
    );
    let env_config = ("POD_IDENTITY_STORE_CONFIG", config.clone().into_os_string());
    let flag: Vec<OsString> = vec!["--data-dir".into(), dir("from-flag").into()];

    let cases = [
        (
            "flag",
            with(&flag),
            vec![env_data.clone(), env_config.clone()],
            dir("from-flag"),
        ),
        (
            "environment",
            with(&[]),
            vec![env_data.clone(), env_config.clone()],
            dir("from-env"),
        ),
        (
            "file",
            with(&[]),
            vec![env_config.clone()],
            dir("from-file"),
        ),
        ("default", with(&[]), vec![], cwd.join("data")),
    ];
    let all = [
        dir("from-flag"),
        dir("from-env"),
        dir("from-file"),
        cwd.join("data"),
    ];
    for (winner, args, env, expected) in cases {
        let mut cmd = command(&args, &env);
        cmd.current_dir(&cwd);
        let server = Server::start(cmd, &log).unwrap_or_else(|e| panic!("{winner}: {e}"));
        let client = Client::new(server.addr);
        client.create_cluster(winner).cluster();
        drop(server);
        for candidate in &all {
            let has_store = candidate.join("db").exists();
            assert_eq!(
                has_store,
                candidate == &expected,
                "{winner} should decide the data dir; {} has a store: {has_store}",
                candidate.display()
            );
        }
        std::fs::remove_dir_all(&expected).unwrap();
    }
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let exit = run_to_exit(command(&serve_args(&app.data_dir), &[]));
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(exit.stderr.contains("in use"), "{}", exit.stderr);
    // The first one keeps serving.
    assert_eq!(app.describe_cluster("c1").cluster()["status"], "ACTIVE");
}

#[test]
fn help_explains_every_flag() {
    let exit = run_to_exit(command(&["--help"], &[]));
    assert!(exit.status.success(), "{}", exit.stderr);
    for flag in ["--config", "--listen", "--data-dir", "migrate", "serve"] {
        assert!(exit.stdout.contains(flag), "{flag}: {}", exit.stdout);
    }
}

#[test]
fn the_ready_line_is_the_first_stdout_line_and_names_the_port_that_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        command(&serve_args(&dir.path().join("data")), &[]),
        &dir.path().join("log"),
    )
    .unwrap();
    assert_eq!(server.stdout_before_ready, Vec::<String>::new());
    assert_ne!(server.addr.port(), 0);
    assert!(server.addr.ip().is_loopback());
    let client = Client::new(server.addr);
    client.list_clusters("").ok();
}

/// sled's settings, a line each in its `conf` file, then a checksum.
fn sled_conf(data_dir: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(data_dir.join("conf")).unwrap()).into_owned()
}

/// `store.compression` decides for a store the server creates, and a store
/// keeps what it was created with (sled cannot change it).
#[test]
fn page_compression_is_chosen_when_a_store_is_created_and_kept_after() {
    let compressed = [("POD_IDENTITY_STORE_COMPRESSION", OsString::from("true"))];
    let mut app = TestApp::spawn_with_env(&compressed);
    app.given_cluster("c1");
    app.stop();
    assert!(sled_conf(&app.data_dir).contains("\nuse_compression: true\n"));
    // Started again without the setting, it opens the store as it is.
    let args: Vec<OsString> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        app.data_dir.clone().into(),
    ];
    let server = Server::start(command(&args, &[]), &app.log).unwrap();
    let client = Client::new(server.addr);
    assert_eq!(client.describe_cluster("c1").cluster()["name"], "c1");
    drop(server);
    assert!(sled_conf(&app.data_dir).contains("\nuse_compression: true\n"));

    let mut default = TestApp::spawn();
    default.given_cluster("c2");
    default.stop();
    assert!(sled_conf(&default.data_dir).contains("\nuse_compression: false\n"));
}

#[test]
fn a_start_up_or_command_failure_prints_the_operating_systems_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let data_dir = file.join("data");
    let mut migrate = vec![OsString::from("migrate")];
    migrate.extend(serve_args(&data_dir));
    for args in [serve_args(&data_dir), migrate] {
        let exit = run_to_exit(command(&args, &[]));
        assert!(!exit.status.success(), "{args:?}: {}", exit.stdout);
        let line = exit
            .stderr
            .lines()
            .find(|l| l.starts_with("pod-identity-store: "))
            .unwrap_or_else(|| panic!("{args:?}: no error line in {}", exit.stderr));
        assert!(line.contains(&data_dir.display().to_string()), "{line}");
        assert_eq!(line.matches("Not a directory").count(), 1, "{line}");
    }
}

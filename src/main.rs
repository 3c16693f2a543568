use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pod_identity_store::backup::{self, progress::Progress};
use pod_identity_store::config::{Config, Overrides};
use pod_identity_store::startup::{without_engine_panics, Application};
use pod_identity_store::store::{self, migrate};

/// mimalloc instead of glibc's malloc: sled allocates and frees on every
/// lookup and insert, often on another thread than the one that allocated,
/// which glibc's per-thread arenas handle slowly. It cut the server CPU of a
/// durable Update by about 13% (README, Performance). Built without
/// transparent huge pages (`no_thp`): with them it was faster still, but a
/// server on a million associations held 147 MiB at rest (107 without them,
/// 69 with glibc's), against a target of 150 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted, durable implementation of the Amazon EKS Pod Identity
/// association API. Point AWS clients at it with an endpoint override.
#[derive(Debug, Parser)]
#[command(name = "pod-identity-store", version)]
struct Cli {
    /// Config file (TOML); see config/default.toml for every setting and its default.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "POD_IDENTITY_STORE_CONFIG"
    )]
    config: Option<PathBuf>,

    /// Address to serve on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        env = "POD_IDENTITY_STORE_LISTEN"
    )]
    listen: Option<SocketAddr>,

    /// Directory of the store, created when missing [default: ./data].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "POD_IDENTITY_STORE_DATA_DIR"
    )]
    data_dir: Option<PathBuf>,

    /// Bytes of the store's page cache [default: 1073741824, 1 GiB].
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        env = "POD_IDENTITY_STORE_CACHE_CAPACITY_BYTES"
    )]
    cache_capacity_bytes: Option<u64>,

    /// Whether a store created now compresses its pages: `true` or `false`
    /// [default: false]. An existing store keeps what it was created with.
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        env = "POD_IDENTITY_STORE_COMPRESSION"
    )]
    compression: Option<bool>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve,
    /// Apply pending schema migrations to the store and exit.
    Migrate {
        /// List the pending steps without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Verify a stopped store without changing it: records, index, counters,
    /// tokens. Exits non-zero when it finds a problem.
    Check,
    /// Load a file written by GET /admin/v1/export into an empty store.
    Import {
        /// The export file (JSON lines).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,sled=off"))
        .init();
    pod_identity_store::startup::install_panic_hook();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pod-identity-store: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir,
        cache_capacity_bytes: cli.cache_capacity_bytes,
        compression: cli.compression,
    };
    let config = Config::load(cli.config.as_deref(), overrides).map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Migrate { dry_run } => migrate(&config, dry_run),
        Command::Check => check(&config),
        Command::Import { file } => import(&config, &file),
    }
}

fn serve(config: &Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        // Tests and scripts read this line to learn the port.
        println!(
            "pod-identity-store listening on {}://{}",
            app.scheme(),
            app.addr()
        );
        let _ = std::io::stdout().flush();
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })?;
    // The store is closed and every handle to it dropped. Only for a fast
    // next start: the stop has succeeded whatever this does.
    let started = std::time::Instant::now();
    let dir = &config.store.data_dir;
    match without_engine_panics(dir, || {
        store::write_recovery_snapshot(dir, config.store.cache_capacity_bytes)
    }) {
        Ok(()) => log::info!(
            "wrote the store's recovery snapshot in {:?}",
            started.elapsed()
        ),
        Err(e) => log::warn!("could not write the store's recovery snapshot: {e}"),
    }
    Ok(())
}

fn migrate(config: &Config, dry_run: bool) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let status =
        migrate::status(dir, config.store.cache_capacity_bytes).map_err(|e| e.to_string())?;
    match status.current {
        Some(v) => println!("store at {}: schema version {v}", dir.display()),
        None => println!(
            "no store at {} yet; it will be created at schema version {}",
            dir.display(),
            migrate::LATEST
        ),
    }
    if status.pending.is_empty() {
        println!("no pending migrations");
        return Ok(());
    }
    for step in &status.pending {
        println!(
            "pending: {} (schema {}): {}",
            step.name, step.version, step.summary
        );
    }
    if dry_run {
        println!("dry run: nothing changed");
        return Ok(());
    }
    let settings = pod_identity_store::startup::store_settings(config);
    let store = store::Store::open(dir, settings).map_err(|e| e.to_string())?;
    store.close().map_err(|e| e.to_string())?;
    println!("migrated to schema version {}", migrate::LATEST);
    Ok(())
}

fn check(config: &Config) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let report =
        without_engine_panics(dir, || store::check(dir, config.store.cache_capacity_bytes))
            .map_err(|e| e.to_string())?;
    println!(
        "store at {}: schema version {}",
        dir.display(),
        report.schema
    );
    println!("clusters: {}", report.clusters);
    println!("associations: {}", report.associations);
    println!("index entries: {}", report.index_entries);
    println!(
        "tokens: {} ({} expired, not swept yet)",
        report.tokens, report.expired_tokens
    );
    println!(
        "record bytes: {} (keys and values of every tree)",
        report.record_bytes
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.problems.is_empty() {
        println!("no problems found");
        return Ok(());
    }
    Err(format!(
        "found {} problem(s) in the store at {} (listed above)",
        report.problems.len(),
        dir.display()
    ))
}

fn import(config: &Config, file: &Path) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let settings = pod_identity_store::startup::store_settings(config);
    let mut progress = Progress::on_stderr(format!("importing {}", file.display()));
    let imported =
        without_engine_panics(dir, || backup::import(file, dir, settings, &mut progress))
            .map_err(|e| e.to_string())?;
    println!(
        "imported {} into the store at {}: clusters: {}, associations: {}, index entries: {}",
        file.display(),
        dir.display(),
        imported.clusters,
        imported.associations,
        imported.index_entries
    );
    Ok(())
}

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pod_identity_store::agent::{self, Agent, AgentSettings};
use pod_identity_store::backup::{self, progress::Progress};
use pod_identity_store::config::{Config, Overrides};
use pod_identity_store::failure::{chain, install_panic_hook, without_engine_panics};
use pod_identity_store::startup::Application;
use pod_identity_store::store::{self, migrate};

/// mimalloc instead of glibc's malloc: sled allocates and frees on every
/// lookup and insert, often on another thread than the one that allocated,
/// which glibc's per-thread arenas handle slowly. Built without transparent
/// huge pages (`no_thp`): with them it is faster still, but a large store's
/// idle server holds much more memory (`docs/performance.md` has both).
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
    /// Serve pods their credentials on this node, as the EKS Pod Identity
    /// Agent does: GET /v1/credentials on --listen (required), from the
    /// server's AssumeRoleForPodIdentity.
    Agent {
        /// The server's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        server: String,
        /// The cluster the pods on this node belong to.
        #[arg(long, value_name = "NAME")]
        cluster: String,
        /// The region the agent signs its calls for [default: aws.region].
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// The agent's key for signing its calls; without it, the standard
        /// AWS chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, …) is asked.
        #[arg(long, value_name = "ID", requires = "secret_access_key")]
        access_key_id: Option<String>,
        #[arg(long, value_name = "SECRET", requires = "access_key_id")]
        secret_access_key: Option<String>,
        #[arg(long, value_name = "TOKEN", requires = "access_key_id")]
        session_token: Option<String>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,sled=off"))
        .init();
    install_panic_hook();
    // The tests' builds arm the store's fail points from FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
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
    // The agent listens where --listen says: the global flag, as the server.
    let listen = cli.listen;
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir,
        cache_capacity_bytes: cli.cache_capacity_bytes,
        compression: cli.compression,
    };
    let config = Config::load(cli.config.as_deref(), overrides).map_err(|e| chain(&e))?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Migrate { dry_run } => migrate(&config, dry_run),
        Command::Check => check(&config),
        Command::Import { file } => import(&config, &file),
        Command::Agent {
            server,
            cluster,
            region,
            access_key_id,
            secret_access_key,
            session_token,
        } => agent(AgentSettings {
            listen: listen.ok_or("the agent needs --listen ADDR, e.g. 127.0.0.1:2703")?,
            server,
            cluster,
            region: region.unwrap_or_else(|| config.aws.region.clone()),
            key: agent::key_from_flags(access_key_id, secret_access_key, session_token)?,
        }),
    }
}

fn serve(config: &Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config).await.map_err(|e| chain(&e))?;
        // Tests and scripts read this line to learn the port.
        println!(
            "pod-identity-store listening on {}://{}",
            app.scheme(),
            app.addr()
        );
        let _ = std::io::stdout().flush();
        app.run_until_stopped().await.map_err(|e| chain(&e))
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
        Err(e) => log::warn!(
            "could not write the store's recovery snapshot: {}",
            chain(&e)
        ),
    }
    Ok(())
}

fn agent(settings: AgentSettings) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async {
        let agent = Agent::build(settings).await.map_err(|e| e.to_string())?;
        // Tests and scripts read this line to learn the port.
        println!(
            "pod-identity-store agent listening on http://{}",
            agent.addr()
        );
        let _ = std::io::stdout().flush();
        agent.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn migrate(config: &Config, dry_run: bool) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let status = migrate::status(dir, config.store.cache_capacity_bytes).map_err(|e| chain(&e))?;
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
    let settings = config.store_settings();
    let store = store::Store::open(dir, settings).map_err(|e| chain(&e))?;
    store.close().map_err(|e| chain(&e))?;
    println!("migrated to schema version {}", migrate::LATEST);
    Ok(())
}

fn check(config: &Config) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let report =
        without_engine_panics(dir, || store::check(dir, config.store.cache_capacity_bytes))
            .map_err(|e| chain(&e))?;
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
    let settings = config.store_settings();
    let mut progress = Progress::on_stderr(format!("importing {}", file.display()));
    let imported =
        without_engine_panics(dir, || backup::import(file, dir, settings, &mut progress))
            .map_err(|e| chain(&e))?;
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

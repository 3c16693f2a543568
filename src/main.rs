use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pod_identity_store::config::{Config, Overrides};
use pod_identity_store::startup::Application;
use pod_identity_store::store::migrate;

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
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,sled=warn"))
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
    };
    let config = Config::load(cli.config.as_deref(), overrides).map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Migrate { dry_run } => migrate(&config, dry_run),
    }
}

fn serve(config: &Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        // Tests and scripts read this line to learn the port.
        println!("pod-identity-store listening on http://{}", app.addr());
        let _ = std::io::stdout().flush();
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn migrate(config: &Config, dry_run: bool) -> Result<(), String> {
    let dir = &config.store.data_dir;
    let status = migrate::status(dir).map_err(|e| e.to_string())?;
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
    let store = pod_identity_store::store::Store::open(dir, settings).map_err(|e| e.to_string())?;
    store.close().map_err(|e| e.to_string())?;
    println!("migrated to schema version {}", migrate::LATEST);
    Ok(())
}

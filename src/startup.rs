//! Building the application: open the store (running migrations), create
//! preset clusters, bind the port (port 0 works) and build the actix server.

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::api::{self, AppState};
use crate::auth::{self, Auth};
use crate::config::Config;
use crate::domain::{
    AwsIdentity, ClusterName, NewCluster, RoleArn, Tags, Timestamp, DEFAULT_KUBERNETES_VERSION,
};
use crate::store::{Store, StoreError, StoreSettings, SweepCursor};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source} (is another server using the port? choose another with --listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    /// The key file, the admin keys or the TLS files were refused.
    #[error("{0}")]
    Security(String),
}

pub struct Application {
    server: Server,
    addr: SocketAddr,
    store: Store,
    sweeper: Sweeper,
    shutdown_timeout: Duration,
    signals: Signals,
    https: bool,
}

pub fn store_settings(config: &Config) -> StoreSettings {
    StoreSettings {
        identity: AwsIdentity::new(&config.aws.region, &config.aws.account_id),
        writable_states: config.clusters.writable_states.clone(),
        token_ttl_seconds: config.idempotency.token_ttl_seconds,
        activation_delay_ms: config.clusters.activation_delay_ms,
        associations_per_cluster: config.limits.associations_per_cluster,
        cache_capacity_bytes: config.store.cache_capacity_bytes,
        compression: config.store.compression,
        segment_cleaning_interval_ms: config.store.segment_cleaning_interval_ms,
    }
}

impl Application {
    /// Everything up to a bound port; the server runs once awaited.
    pub async fn build(config: &Config) -> Result<Application, StartupError> {
        // Keys and certificates first: a refusal then leaves the store untouched.
        let auth = Arc::new(
            Auth::from_config(&config.auth, &config.aws.region).map_err(StartupError::Security)?,
        );
        let tls = match (&config.server.tls.cert_file, &config.server.tls.key_file) {
            (Some(cert), Some(key)) => {
                Some(auth::tls::server_config(cert, key).map_err(StartupError::Security)?)
            }
            _ => None,
        };
        let https = tls.is_some();
        let settings = store_settings(config);
        let identity = settings.identity.clone();
        let store = open_store(&config.store.data_dir, settings)?;
        log::info!("store open at {}", config.store.data_dir.display());
        create_presets(config, &store, &identity).await?;

        let addr = config.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = web::Data::new(AppState::new(store.clone(), identity).with_auth(auth.clone()));
        let max_body_bytes = config.server.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new().configure(api::configure(state.clone(), max_body_bytes))
        })
        // Signals are ours (`run_until_stopped`): SIGINT must stop as
        // gracefully as SIGTERM, and a second signal at once.
        .disable_signals()
        .shutdown_timeout(config.server.shutdown_timeout_seconds);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(StartupError::Server)?
        .run();
        let sweeper = Sweeper::start(
            store.clone(),
            Duration::from_secs(config.idempotency.sweep_interval_seconds),
        );
        // Listening for signals before anyone can see the port open, so that
        // an early SIGINT or SIGTERM stops gracefully too.
        let signals = Signals::new().map_err(StartupError::Server)?;
        // Always: SIGHUP's default action would end the process, and
        // `systemctl reload` sends it whatever the auth mode.
        reload_on_sighup(auth).map_err(StartupError::Server)?;
        Ok(Application {
            server,
            addr,
            store,
            sweeper,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_seconds),
            signals,
            https,
        })
    }

    /// `https` when `server.tls` is set, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or SIGINT, then stops: no new connections, the
    /// requests in flight finish (for at most `server.shutdown_timeout_seconds`),
    /// the store is flushed and closed. A second signal exits at once, which
    /// loses nothing acknowledged: every acknowledged write is already durable.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        crate::systemd::notify("READY=1");
        // Not a `Store`: the watchdog's thread outlives the server, and a
        // store handle would keep sled's files open after `close`.
        let healthy = self.store.health();
        crate::systemd::start_watchdog(move || healthy.is_writable());
        let handle = self.server.handle();
        let timeout = self.shutdown_timeout;
        let mut signals = self.signals;
        actix_web::rt::spawn(async move {
            let first = signals.next().await;
            log::info!(
                "{first} received: stopping (no new connections; requests in flight get {timeout:?}); \
                 send it again to stop at once"
            );
            crate::systemd::notify("STOPPING=1");
            tokio::select! {
                () = handle.stop(true) => {}
                second = signals.next() => {
                    log::warn!("{second} received again: stopping at once");
                    std::process::exit(1);
                }
            }
        });
        let served = self.server.await.map_err(StartupError::Server);
        self.sweeper.stop();
        self.store.close()?;
        log::info!("store closed");
        served
    }
}

/// Reads the credentials file again on every SIGHUP, as daemons reload
/// their configuration (`systemctl reload`).
fn reload_on_sighup(auth: Arc<Auth>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            auth.reload();
        }
    });
    Ok(())
}

/// SIGTERM and SIGINT, as one stream.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Opens the store, a storage-engine panic reported as an error.
fn open_store(dir: &std::path::Path, settings: StoreSettings) -> Result<Store, StoreError> {
    without_engine_panics(dir, || Store::open(dir, settings))
}

/// Runs `f`, which reads the store in `dir`, turning a panic into a
/// `Damaged` error. sled 0.34 can panic on a damaged data file instead of
/// returning an error; the user gets one clear line, not a backtrace.
pub fn without_engine_panics<T, E: From<StoreError>>(
    dir: &std::path::Path,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let outcome = QUIET_PANICS.with(|quiet| {
        quiet.set(true);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        quiet.set(false);
        outcome
    });
    outcome.unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the storage engine stopped while reading it");
        Err(StoreError::Damaged {
            dir: dir.to_owned(),
            detail: detail.to_owned(),
        }
        .into())
    })
}

thread_local! {
    /// Set while a panic is caught and reported as an error.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Logs a panic as one line (no backtrace), unless it is caught on purpose.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if QUIET_PANICS.with(|quiet| quiet.get()) {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        log::error!("internal error (panic){location}: {message}");
    }));
}

async fn create_presets(
    config: &Config,
    store: &Store,
    identity: &AwsIdentity,
) -> Result<(), StoreError> {
    for preset in &config.clusters.preset {
        let name = ClusterName::parse("name", &preset.name)?;
        let role = format!(
            "arn:{}:iam::{}:role/eks-cluster-role",
            identity.partition.as_str(),
            identity.account_id
        );
        let request = NewCluster {
            name,
            role_arn: RoleArn::parse_in_account("roleArn", &role, identity)?,
            version: DEFAULT_KUBERNETES_VERSION.into(),
            tags: Tags::default(),
        };
        if store
            .ensure_cluster(request, preset.status, Timestamp::now())
            .await?
        {
            log::info!("created preset cluster {} ({})", preset.name, preset.status);
        }
    }
    Ok(())
}

/// Removes expired client request tokens now and then, so the token tree
/// stays bounded although SDKs send a fresh token with every call.
struct Sweeper {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    fn start(store: Store, every: Duration) -> Sweeper {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Each tick reads tokens for at most a quarter of the interval,
            // going on from where the last one stopped.
            let mut cursor = SweepCursor::default();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match store.sweep_expired_tokens(Timestamp::now(), &mut cursor, every / 4) {
                    Ok(0) => {}
                    Ok(n) => log::debug!("swept {n} expired client request tokens"),
                    Err(e) => log::warn!("sweeping expired client request tokens failed: {e}"),
                }
            }
        });
        Sweeper { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

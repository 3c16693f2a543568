//! Building the application: open the store (running migrations), create
//! preset clusters, bind the port (port 0 works) and build the actix server.

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::api::{self, AppState, ClockControl, EksAuthState};
use crate::auth::{self, Auth};
use crate::config::Config;
use crate::domain::{
    AwsIdentity, Clock, ClusterName, NewCluster, RoleArn, Tags, DEFAULT_KUBERNETES_VERSION,
};
use crate::eksauth::CredentialSource;
use crate::failure::{chain, without_engine_panics};
use crate::faults::{FaultSpec, Faults};
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
    #[error("invalid setting faults.{0}")]
    Faults(#[from] crate::faults::RuleError),
    /// Stopped (on a signal) after the store had failed.
    #[error(
        "stopped after a storage failure: {0}; every write acknowledged before it is on disk. \
         Free space or repair the disk, then start the server again"
    )]
    StoppedAfterFailure(Arc<str>),
}

/// How `max_connections` in total is shared among the HTTP workers: one
/// worker per CPU (at most 512, as actix allows, and no more than there are
/// connections), each taking its share rounded up. Answers (workers,
/// connections per worker).
fn connection_shares(max_connections: usize, cpus: usize) -> (usize, usize) {
    let workers = cpus.clamp(1, 512).min(max_connections.max(1));
    (workers, max_connections.div_ceil(workers).max(1))
}

/// Descriptors the store and the server keep beyond one per connection.
const OTHER_DESCRIPTORS: u64 = 64;

/// Warns when the process may open fewer files than `max_connections`
/// needs: past that, accepting fails and new connections wait as they do
/// past the bound, which is then lower than the setting says.
fn warn_if_descriptors_run_out_first(max_connections: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(open_files_limit)
    else {
        return;
    };
    if limit < max_connections as u64 + OTHER_DESCRIPTORS {
        log::warn!(
            "server.max_connections is {max_connections} but this process may open only {limit} \
             files (ulimit -n, systemd's LimitNOFILE=): raise that limit or lower the setting"
        );
    }
}

/// The soft "Max open files" of a `/proc/self/limits` text.
fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
        let settings = config.store_settings();
        let identity = settings.identity.clone();
        let store = open_store(&config.store.data_dir, settings)?;
        log::info!("store open at {}", config.store.data_dir.display());
        let clock = Arc::new(Clock::default());
        create_presets(config, &store, &identity, &clock).await?;

        let addr = config.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        let sweeper = Sweeper::start(
            store.clone(),
            clock.clone(),
            Duration::from_secs(config.idempotency.sweep_interval_seconds),
        );
        let clock_control = config.testing.clock_control.then(|| {
            log::warn!(
                "testing.clock_control is on: POST /admin/v1/clock moves this server's clock \
                 forward; never turn it on for real clients"
            );
            let nudge = sweeper.nudge.clone();
            ClockControl {
                sweep_now: Arc::new(move || {
                    let (reply, swept) = mpsc::channel();
                    nudge
                        .send(Tick::Now(reply))
                        .map_err(|_| "the token sweep has stopped".to_owned())?;
                    swept
                        .recv()
                        .map_err(|_| "the token sweep has stopped".to_owned())?
                }),
            }
        });
        let faults = FaultSpec::from_config(&config.faults)?;
        if !faults.rules.is_empty() {
            log::warn!(
                "{} fault rule(s) from [faults] are in force: clients will meet injected \
                 failures (GET /admin/v1/faults lists them)",
                faults.rules.len()
            );
        }
        let faults = Faults::new(faults, clock.now());
        let credentials = CredentialSource::from_config(config).await;
        let eks_auth = EksAuthState::new(
            config.server.public_url_or(addr),
            credentials,
            config.eks_auth.session_duration_seconds,
        );
        let state = web::Data::new(
            AppState::new(
                store.clone(),
                identity,
                clock,
                clock_control,
                faults,
                eks_auth,
            )
            .with_auth(auth.clone()),
        );
        let body = api::BodyLimits {
            max_bytes: config.server.max_body_bytes,
            read_timeout: Duration::from_secs(config.server.body_read_timeout_seconds),
        };
        let (workers, per_worker) = connection_shares(
            config.server.max_connections,
            std::thread::available_parallelism().map_or(1, usize::from),
        );
        log::info!(
            "{workers} HTTP workers, at most {per_worker} connections each (server.max_connections {})",
            config.server.max_connections
        );
        warn_if_descriptors_run_out_first(config.server.max_connections);
        let server =
            HttpServer::new(move || App::new().configure(api::configure(state.clone(), body)))
                .workers(workers)
                // actix counts this per worker.
                .max_connections(per_worker)
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
        self.sweeper.stop(&self.store);
        match self.store.close() {
            Ok(()) => log::info!("store closed"),
            Err(StoreError::Unwritable(failure)) => {
                return Err(StartupError::StoppedAfterFailure(failure))
            }
            Err(e) => return Err(e.into()),
        }
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

async fn create_presets(
    config: &Config,
    store: &Store,
    identity: &AwsIdentity,
    clock: &Clock,
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
            .ensure_cluster(request, preset.status, clock.now())
            .await?
        {
            log::info!("created preset cluster {} ({})", preset.name, preset.status);
        }
    }
    Ok(())
}

/// The most expired credentials one tick of the sweeper removes; the rest
/// wait for the next tick (an expired credential is not served meanwhile).
const CREDENTIALS_PER_SWEEP: usize = 10_000;

/// Removes expired client request tokens and minted credentials now and
/// then, so their trees stay bounded although SDKs send a fresh token with
/// every call and every AssumeRoleForPodIdentity mints new credentials.
struct Sweeper {
    /// Asks for a sweep at once, or for the thread to end.
    nudge: mpsc::Sender<Tick>,
    thread: JoinHandle<()>,
}

enum Tick {
    /// Sweep the whole token tree now and answer how many tokens went
    /// (`POST /admin/v1/clock` with `sweepTokens`).
    Now(mpsc::Sender<Result<usize, String>>),
    Stop,
}

impl Sweeper {
    fn start(store: Store, clock: Arc<Clock>, every: Duration) -> Sweeper {
        let (nudge, ticks) = mpsc::channel::<Tick>();
        let thread = std::thread::spawn(move || {
            // Each tick reads tokens for at most a quarter of the interval,
            // going on from where the last one stopped.
            let mut cursor = SweepCursor::default();
            loop {
                let (swept, reply) = match ticks.recv_timeout(every) {
                    // A failed store removes nothing; `/readyz` already says why.
                    Err(mpsc::RecvTimeoutError::Timeout) if !store.is_writable() => continue,
                    Err(mpsc::RecvTimeoutError::Timeout) => (
                        store.sweep_expired_tokens(clock.now(), &mut cursor, every / 4),
                        None,
                    ),
                    // From the first token to the last, however long it
                    // takes, so that every token expired by now is gone
                    // when the caller hears back.
                    Ok(Tick::Now(reply)) => (
                        store.sweep_expired_tokens(
                            clock.now(),
                            &mut SweepCursor::default(),
                            Duration::MAX,
                        ),
                        Some(reply),
                    ),
                    Ok(Tick::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                let swept = swept.map_err(|e| chain(&e));
                match &swept {
                    Ok(0) => {}
                    Ok(n) => log::debug!("swept {n} expired client request tokens"),
                    Err(e) => log::warn!("sweeping expired client request tokens failed: {e}"),
                }
                match store.sweep_expired_credentials(clock.now(), CREDENTIALS_PER_SWEEP) {
                    Ok(0) => {}
                    Ok(n) => log::debug!("swept {n} expired pod identity credentials"),
                    Err(e) => log::warn!("sweeping expired credentials failed: {}", chain(&e)),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(swept);
                }
            }
        });
        Sweeper { nudge, thread }
    }

    /// Ends the sweep; on a failed `store`, without waiting for a sweep
    /// held up inside sled by the failing disk.
    fn stop(self, store: &Store) {
        let _ = self.nudge.send(Tick::Stop);
        let started = std::time::Instant::now();
        crate::failure::join_or_give_up(self.thread, || {
            !store.is_writable() && started.elapsed() >= Duration::from_secs(1)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::connection_shares;

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63704                63704                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(super::open_files_limit(limits), Some(1024));
        assert_eq!(
            super::open_files_limit("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(super::open_files_limit(""), None);
    }

    #[test]
    fn the_connection_bound_is_shared_among_the_workers_rounding_up() {
        assert_eq!(connection_shares(10_000, 2), (2, 5_000));
        assert_eq!(connection_shares(10_001, 2), (2, 5_001));
        assert_eq!(connection_shares(10, 3), (3, 4));
        // Fewer connections than CPUs: one worker per connection.
        assert_eq!(connection_shares(2, 8), (2, 1));
        assert_eq!(connection_shares(1, 8), (1, 1));
        assert_eq!(connection_shares(100, 1024), (100, 1));
    }
}

//! Building the application: open the store (running migrations), create
//! preset clusters, bind the port (port 0 works) and build the actix server.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::domain::{
    AwsIdentity, ClusterName, NewCluster, RoleArn, Tags, Timestamp, DEFAULT_KUBERNETES_VERSION,
};
use crate::store::{Store, StoreError, StoreSettings};

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
}

pub struct Application {
    server: Server,
    addr: SocketAddr,
    store: Store,
    sweeper: Sweeper,
}

pub fn store_settings(config: &Config) -> StoreSettings {
    StoreSettings {
        identity: AwsIdentity::new(&config.aws.region, &config.aws.account_id),
        writable_states: config.clusters.writable_states.clone(),
        token_ttl_seconds: config.idempotency.token_ttl_seconds,
        activation_delay_ms: config.clusters.activation_delay_ms,
        associations_per_cluster: config.limits.associations_per_cluster,
    }
}

impl Application {
    /// Everything up to a bound port; the server runs once awaited.
    pub async fn build(config: &Config) -> Result<Application, StartupError> {
        let settings = store_settings(config);
        let identity = settings.identity.clone();
        let store = Store::open(&config.store.data_dir, settings)?;
        log::info!("store open at {}", config.store.data_dir.display());
        create_presets(config, &store, &identity).await?;

        let addr = config.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = web::Data::new(AppState::new(store.clone(), identity));
        let max_body_bytes = config.server.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new().configure(api::configure(state.clone(), max_body_bytes))
        })
        .listen(listener)
        .map_err(StartupError::Server)?
        .run();
        let sweeper = Sweeper::start(
            store.clone(),
            Duration::from_secs(config.idempotency.sweep_interval_seconds),
        );
        Ok(Application {
            server,
            addr,
            store,
            sweeper,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM), then makes the
    /// store durable and closes it.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let served = self.server.await.map_err(StartupError::Server);
        self.sweeper.stop();
        self.store.close()?;
        log::info!("store closed");
        served
    }
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
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match store.sweep_expired_tokens(Timestamp::now()) {
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

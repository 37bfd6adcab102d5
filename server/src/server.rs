//! Starting the service: secret, database, demo accounts, listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use api_types::roles;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::{CreateUserError, Db};
use crate::keys::load_or_create_secret;
use crate::linger::LingeringListener;
use crate::state::{AppState, Settings};

/// Why the server could not start (printed as one line by main).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The secret could not be loaded.
    #[error(transparent)]
    Secret(#[from] crate::keys::SecretError),
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// URL without credentials.
        url: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// The port is taken.
    #[error("port {port} on {addr} is already in use; start with --bind 127.0.0.1:<port> (or PORT=<port>) to use another")]
    PortInUse {
        /// The address.
        addr: String,
        /// The port.
        port: u16,
    },
    /// Other I/O failures.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Creates the demo accounts that do not exist yet.
pub async fn seed_demo(state: &AppState, password: &str) -> Result<(), crate::error::ApiError> {
    let accounts: [(&str, &[&str]); 3] = [
        ("user", &[roles::USER]),
        ("mod", &[roles::USER, roles::MODERATOR]),
        ("admin", &[roles::USER, roles::MODERATOR, roles::ADMIN]),
    ];
    for (name, rs) in accounts {
        let hash = state.passwords().hash(password.to_owned()).await?;
        let rs: Vec<String> = rs.iter().map(|r| (*r).to_owned()).collect();
        match state
            .db()
            .create_user(
                name,
                &format!("{name}@demo.invalid"),
                &hash,
                &rs,
                state.now_ms(),
            )
            .await
        {
            Ok(_) => println!("demo account created: {name} / {password}"),
            Err(CreateUserError::UsernameTaken | CreateUserError::EmailTaken) => {
                println!("demo account {name} already exists (password unchanged)")
            }
            Err(CreateUserError::Db(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Keeps argon2id's 19 MiB blocks out of glibc's arenas.
///
/// glibc raises its mmap threshold after the first large block is freed, so later 19 MiB blocks
/// come from per-thread arenas and stay resident (up to one per arena, 8 per core). Pinning the
/// threshold makes every such block an mmap that is returned to the OS when the hash is done.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_MMAP_THRESHOLD: libc::c_int = -3;
        // SAFETY: mallopt only changes allocator tuning; called once at start, before threads.
        unsafe {
            libc::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    if config.allowed_origin.iter().any(|o| o.trim() == "*") {
        return Err(StartError::Config(
            "--allowed-origin '*' is refused: credentials are allowed, so origins must be listed"
                .into(),
        ));
    }
    if config.refresh_grace > config.refresh_idle_ttl {
        return Err(StartError::Config(
            "--refresh-grace must be shorter than --refresh-idle-ttl".into(),
        ));
    }
    // The BFF flags are checked before anything is bound or created.
    let bff = crate::bff::BffConfig::from_config(&config).map_err(StartError::Config)?;
    // Bind first: a taken port fails fast, before any file or database is created.
    let addr = config.bind_addr();
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let port = addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            return Err(StartError::PortInUse { addr, port });
        }
        Err(e) => return Err(e.into()),
    };
    let secret = load_or_create_secret(&config.secret_file)?;
    let db = Db::connect_with_cache(
        &config.database_url,
        config.db_max_connections,
        !config.no_access_cache,
    )
    .await
    .map_err(|source| StartError::Database {
        url: redact(&config.database_url),
        source,
    })?;
    let settings = Settings::from(&config);
    let state = AppState::new(settings, db.clone(), &secret);
    // Backend-for-frontend mode (src/bff/): discovery at start, so a wrong issuer stops here.
    if let Some(bff) = bff {
        let bff = crate::bff::Bff::start(bff, &secret, db.clone())
            .await
            .map_err(StartError::Config)?;
        state
            .set_bff(bff)
            .map_err(|e| StartError::Config(e.into()))?;
    }
    if config.seed_demo {
        seed_demo(&state, &config.demo_password)
            .await
            .map_err(|e| StartError::Config(format!("seeding demo accounts failed: {e}")))?;
    }
    // Signal handlers go in before the start line: a SIGTERM sent as soon as the URL is seen
    // must stop the server gracefully, not kill it with the default action.
    let shutdown = shutdown_signal()?;
    let local = listener.local_addr()?;
    println!("session-api listening on http://{local}");
    // Ended families are kept a day for the reuse log, then purged; so are the throttle's
    // counters whose window ended.
    let purge_db = db.clone();
    let purge_state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match purge_db
                .purge_ended_families(purge_state.now_ms(), 86_400_000)
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(families = n, "purged ended refresh-token families")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
            match purge_state.throttle().purge(purge_state.now_ms()).await {
                Ok(n) if n > 0 => {
                    tracing::info!(counters = n, "purged ended failed-sign-in counters")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge of failed-sign-in counters failed"),
            }
        }
    });
    serve(listener, crate::app(state), shutdown).await?;
    db.pool().close().await;
    println!("session-api stopped");
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` resolves (then lets open connections finish): the
/// peer address as `ConnectInfo<SocketAddr>`, and a lingering close of every connection
/// ([`crate::linger`]) so that an answer sent before the request body was read stays readable.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `tap_io` changes nothing: axum implements `ConnectInfo<SocketAddr>` for `TcpListener` and
    // for `TapIo` listeners only.
    let listener = LingeringListener::new(listener).tap_io(|_| {});
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Installs the Ctrl-C and SIGTERM handlers now; the future resolves on either signal.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        let term = term.recv();
        #[cfg(not(unix))]
        let term = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutting down");
    })
}

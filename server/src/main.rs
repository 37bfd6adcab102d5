//! session-api: the reference auth server for yew-session. Only starts things.

use clap::Parser;

#[tokio::main]
async fn main() {
    session_api::server::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "session_api=info,tower_http=warn".into()),
        )
        .init();
    let config = session_api::config::Config::parse();
    if let Err(e) = session_api::server::run(config).await {
        eprintln!("session-api: {e}");
        std::process::exit(1);
    }
}

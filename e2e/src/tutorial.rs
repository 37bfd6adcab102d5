//! The fake of the tutorial's Node backend (the `tutorial-fake` crate, the same one the host
//! tests check against ../shared/TUTORIAL-BACKEND.md) on a socket of 127.0.0.1 with the system
//! clock, for the compatibility-mode scenarios. Beside its API it serves the app (with a
//! compatibility `config.json`), so the page and the API share one origin; it counts what it
//! answered, for the assertions.

use std::path::PathBuf;
use std::sync::Arc;

use tower_http::services::{ServeDir, ServeFile};
use tutorial_fake::{Fake, Lifetimes, SystemClock};

pub use tutorial_fake::Counters;

/// The running fake; stops when dropped.
pub struct TutorialBackend {
    port: u16,
    /// What it answered.
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl TutorialBackend {
    /// Serves `static_dir` (the app, with a compatibility `config.json`) and the API on a free
    /// port of 127.0.0.1, with demo accounts `user`, `mod` (also a moderator) and `admin` (also
    /// an admin), all with `password`.
    pub async fn start(
        static_dir: PathBuf,
        password: &str,
        access_ttl_s: u64,
        refresh_ttl_s: u64,
    ) -> TutorialBackend {
        let fake = Fake::new(
            Arc::new(SystemClock),
            Lifetimes {
                access_ttl_s,
                refresh_ttl_s,
            },
        );
        for (name, roles) in [
            ("user", &["user"][..]),
            ("mod", &["user", "moderator"]),
            ("admin", &["user", "admin"]),
        ] {
            let email = format!("{name}@tutorial.invalid");
            assert!(fake.add_user(name, &email, password, roles));
        }
        let index = static_dir.join("index.html");
        let app =
            fake.router_with_fallback(ServeDir::new(&static_dir).fallback(ServeFile::new(index)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake tutorial backend");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TutorialBackend {
            port,
            counters: fake.counters,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TutorialBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

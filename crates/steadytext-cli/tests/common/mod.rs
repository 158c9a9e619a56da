//! Shared helpers of the CLI's database tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use steadytext_pg::sqlx::{self, PgPool};

/// The `steadytext` binary with `args`, its cache in `cache`, the default model, two threads.
pub fn steadytext(args: &[&str], cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steadytext"));
    cmd.args(args)
        .env("STEADYTEXT_CACHE_DIR", cache)
        .env_remove("STEADYTEXT_MODEL")
        .env_remove("STEADYTEXT_SENTIMENT_MODEL")
        .env("RAYON_NUM_THREADS", "2")
        .stdin(Stdio::null());
    cmd
}

/// A `steadytext worker` on `url` with a lease of `lease` seconds (stdout piped: its report).
pub fn spawn_worker(url: &str, cache: &Path, lease: &str) -> Child {
    steadytext(
        &[
            "worker",
            "--database-url",
            url,
            "--lease",
            lease,
            "--poll-interval",
            "0.5",
            "--shutdown-grace",
            "30",
        ],
        cache,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("spawn steadytext worker")
}

/// The server's URL (`DATABASE_URL`, else the project's local server).
pub fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty database of its own for one test; dropped by [`ScratchDb::drop_now`].
pub struct ScratchDb {
    admin: PgPool,
    name: String,
    /// Its URL.
    pub url: String,
}

impl ScratchDb {
    /// Create `{prefix}_{pid}` (replacing a leftover one).
    pub async fn create(prefix: &str) -> Self {
        let base = base_url();
        let admin = PgPool::connect(&base).await.unwrap();
        let name = format!("{prefix}_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let (head, _) = base.rsplit_once('/').expect("a database URL with a path");
        let url = format!("{head}/{name}");
        Self { admin, name, url }
    }

    /// Set `name` to `value` for every new session on it (`ALTER DATABASE ... SET`).
    pub async fn set(&self, name: &str, value: &str) {
        sqlx::query(&format!(
            "ALTER DATABASE {} SET {name} = '{value}'",
            self.name
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop it (sessions still connected are ended).
    pub async fn drop_now(self) {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

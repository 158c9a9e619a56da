//! Shared helpers of the CLI's database tests.
#![allow(dead_code)]

use steadytext_pg::sqlx::{self, PgPool};

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

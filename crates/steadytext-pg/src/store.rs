//! [`Store`]: a connection pool plus the embedded migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::cache::PgCache;
use crate::error::{redact_url, PgError, Result};
use crate::queue::Queue;

/// The crate's migrations (`crates/steadytext-pg/migrations`), embedded at compile time:
/// the seed's customer-intelligence schema, the job queue with its triggers, the cache tables.
///
/// Usable directly with `#[sqlx::test(migrator = "steadytext_pg::MIGRATOR")]`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How [`Store::connect_with`] builds its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Pool size. A [`Worker`](crate::Worker) with concurrency `n` wants about `2n + 2`
    /// (a transaction and a lease heart-beat per job, the listener, claiming).
    pub max_connections: u32,
    /// How long to wait for a connection (also the connect timeout).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database: cheap to clone (it wraps a [`PgPool`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), steadytext_pg::PgError> {
/// let store = steadytext_pg::Store::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
/// store.migrate().await?;
/// let stats = store.queue().stats().await?;
/// println!("{} jobs pending", stats.pending);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connect with [`StoreOptions::default`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// Parse `url`, open one connection to check that the server is reachable and accepts us
    /// (so a wrong URL fails fast with the real cause instead of a pool timeout), then build
    /// the pool.
    ///
    /// # Errors
    /// [`PgError::InvalidUrl`] if `url` does not parse; [`PgError::Connect`] if the server
    /// refuses, is unreachable within `acquire_timeout`, or rejects the login. Both carry the
    /// URL with its password redacted.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Self> {
        let shown = redact_url(url);
        let connect_options = PgConnectOptions::from_str(url).map_err(|e| PgError::InvalidUrl {
            url: shown.clone(),
            reason: match e {
                sqlx::Error::Configuration(inner) => inner.to_string(),
                other => other.to_string(),
            },
        })?;
        let probe = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect_options),
        )
        .await
        .map_err(|_| PgError::Connect {
            url: shown.clone(),
            source: sqlx::Error::PoolTimedOut,
        })?
        .map_err(|source| PgError::Connect {
            url: shown.clone(),
            source,
        })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect_options);
        Ok(Self { pool })
    }

    /// Wrap an existing pool (e.g. the one `#[sqlx::test]` hands a test).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Apply the embedded migrations ([`MIGRATOR`]), then seed an empty feedback taxonomy
    /// with the default ([`crate::taxonomy::seed_default`]). Safe to call every start-up and
    /// from several processes at once: sqlx records applied migrations and serialises runs
    /// with an advisory lock, and the seed inserts nothing that is already there.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        let mut conn = self.pool.acquire().await?;
        crate::taxonomy::seed_default(&mut conn).await?;
        Ok(())
    }

    /// The job queue over this pool, with the default [`RetryPolicy`](crate::RetryPolicy).
    pub fn queue(&self) -> Queue {
        Queue::new(self.pool.clone())
    }

    /// The Postgres cache tier over this pool.
    pub fn cache(&self) -> PgCache {
        PgCache::new(self.pool.clone())
    }
}

impl From<PgPool> for Store {
    fn from(pool: PgPool) -> Self {
        Self::from_pool(pool)
    }
}

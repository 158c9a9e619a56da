//! The resolution playbook as data in the database: `steadytext.resolution_playbook`
//! (migration `0006_resolution_playbook.sql`, seeded with
//! [`ResolutionPlaybook::default`]'s entries). Users edit its rows; every ticket analysis
//! ([`crate::Intelligence::analyze_ticket`], the ticket jobs) reads the current rows, in
//! `position` order (ties by `id`).
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), steadytext_pg::PgError> {
//! let mut conn = pool.acquire().await?;
//! let playbook = steadytext_pg::resolutions::load(&mut conn).await?;
//! let s = playbook.select("billing_payment", "charged twice", "");
//! println!("{}", s.entry.resolution);
//! # Ok(()) }
//! ```

use sqlx::PgConnection;
use steadytext_schema::{ResolutionEntry, ResolutionPlaybook};

use crate::error::Result;

/// The playbook the table holds now.
///
/// # Errors
/// [`PgError::Playbook`](crate::PgError::Playbook) when the rows do not make a playbook (no
/// catch-all row: category `other` with no cause keywords).
pub async fn load(conn: &mut PgConnection) -> Result<ResolutionPlaybook> {
    let rows: Vec<(String, Vec<String>, String)> = sqlx::query_as(
        "SELECT category, cause_keywords, resolution FROM steadytext.resolution_playbook \
         ORDER BY position, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let entries = rows
        .into_iter()
        .map(|(category, cause_keywords, resolution)| ResolutionEntry {
            category,
            cause_keywords,
            resolution,
        })
        .collect();
    Ok(ResolutionPlaybook::new(entries)?)
}

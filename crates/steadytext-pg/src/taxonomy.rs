//! The database's feedback taxonomy (`steadytext_taxonomy`, migration 0005): the categories
//! review themes are filed under, editable as rows.
//!
//! An empty table is seeded with [`Taxonomy::default`] by [`crate::Store::migrate`]; analyses
//! read the table each time they need it, so an edit applies to the next analysis.

use sqlx::PgConnection;
use steadytext_schema::taxonomy::{Category, Taxonomy};

use crate::error::{PgError, Result};

/// Insert the default taxonomy when the table is empty (a no-op otherwise).
pub async fn seed_default(conn: &mut PgConnection) -> Result<()> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM steadytext_taxonomy")
        .fetch_one(&mut *conn)
        .await?;
    if n > 0 {
        return Ok(());
    }
    for (position, c) in Taxonomy::default().categories().iter().enumerate() {
        sqlx::query(
            "INSERT INTO steadytext_taxonomy (key, label, keywords, position) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&c.key)
        .bind(&c.label)
        .bind(&c.keywords)
        .bind(position as i32)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The taxonomy as stored, in `position` order. An empty table reads as the default.
///
/// Errors: [`PgError::BadRow`] when the rows do not form a valid taxonomy (a single
/// category).
pub async fn load(conn: &mut PgConnection) -> Result<Taxonomy> {
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT key, label, keywords FROM steadytext_taxonomy ORDER BY position, key",
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(Taxonomy::default());
    }
    Taxonomy::new(
        rows.into_iter()
            .map(|(key, label, keywords)| Category {
                key,
                label,
                keywords,
            })
            .collect(),
    )
    .map_err(|e| PgError::BadRow {
        table: "steadytext_taxonomy",
        id: 0,
        reason: e.to_string(),
    })
}

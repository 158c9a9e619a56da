//! The bulk runs' model calls: [`steadytext_schema::batch`] (shared with the in-memory
//! scenario) with this crate's error type.

use std::future::Future;

pub use steadytext_schema::batch::DEFAULT_CONCURRENCY;

use crate::error::Result;
use crate::progress::Stage;

/// [`steadytext_schema::batch::ordered`] with [`PgError`](crate::PgError) results.
pub(crate) async fn ordered<'i, T, R, F, Fut>(
    items: &'i [T],
    concurrency: usize,
    stage: &Stage<'_>,
    f: F,
) -> Result<Vec<R>>
where
    F: Fn(&'i T) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    steadytext_schema::batch::ordered(items, concurrency, stage, f).await
}

//! The bulk runs' model calls, issued concurrently with a bound and collected in input order:
//! the same for the in-memory scenario (`steadytext demo`) and the PostgreSQL path
//! (`steadytext-pg`'s `Intelligence`).
//!
//! A bulk run (every reportable customer of a churn run, every segment, every queued review)
//! makes one model call per row. Issued one after another, each call waits for the previous
//! one; issued together, an engine that batches concurrent requests (continuous batching)
//! runs them in shared weight passes. The engine is deterministic per request, so the results
//! are the same either way, and they come back in input order, so whatever is written from
//! them is written in the same order as a sequential run would.

use std::future::Future;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::progress::Stage;

/// Model calls in flight per bulk run unless configured.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// `f` over `items` with at most `concurrency` calls in flight, results in input order; the
/// first error (in input order) ends the run and drops the calls still in flight. Each
/// finished call ticks `stage`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use steadytext_schema::{batch::ordered, progress::{NoProgress, Stage}};
/// let stage = Stage::start(&NoProgress, "squares", 3);
/// let out = ordered(&[1, 2, 3], 2, &stage, |x| async move { Ok::<_, ()>(x * x) }).await;
/// assert_eq!(out, Ok(vec![1, 4, 9]));
/// # });
/// ```
pub async fn ordered<'i, T, R, E, F, Fut>(
    items: &'i [T],
    concurrency: usize,
    stage: &Stage<'_>,
    f: F,
) -> Result<Vec<R>, E>
where
    F: Fn(&'i T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    // The item's lifetime is spelled out: an inferred, higher-ranked closure here makes the
    // whole future unprovably `Send` ("FnOnce is not general enough") for `tokio::spawn`.
    stream::iter(items.iter().map(|item: &'i T| {
        let call = f(item);
        async move {
            let r = call.await;
            stage.tick();
            r
        }
    }))
    .buffered(concurrency.max(1))
    .try_collect()
    .await
}

//! [`Progress`]: how far a bulk run (the in-memory scenario, or `steadytext-pg`'s
//! `Intelligence`) has got, for a progress bar or a log line.

use std::sync::atomic::{AtomicU64, Ordering};

/// Stage name: analysing the reviews and tickets (the queued ones on the PostgreSQL path).
pub const STAGE_PENDING: &str = "reviews and tickets";
/// Stage name: retention strategies of a churn run.
pub const STAGE_CHURN: &str = "retention strategies";
/// Stage name: segment profiles.
pub const STAGE_SEGMENTS: &str = "segment profiles";
/// Stage name: the dashboard's customer insights.
pub const STAGE_DASHBOARD: &str = "customer insights";

/// Receives the progress of bulk runs: each stage reports `done == 0` when it starts, then
/// once per finished item (a model call), in any order when items run concurrently.
/// Called on the running task: keep it cheap.
///
/// Any `Fn(&str, u64, u64) + Send + Sync` closure is a `Progress`:
///
/// ```
/// use steadytext_schema::progress::Progress;
/// let log = |stage: &str, done: u64, total: u64| eprintln!("{stage}: {done}/{total}");
/// log.update("segment profiles", 1, 3);
/// ```
pub trait Progress: Send + Sync {
    /// `done` of `total` items of `stage` are finished (`done <= total`).
    fn update(&self, stage: &str, done: u64, total: u64);
}

impl<F: Fn(&str, u64, u64) + Send + Sync> Progress for F {
    fn update(&self, stage: &str, done: u64, total: u64) {
        self(stage, done, total)
    }
}

/// Reports nothing (the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _stage: &str, _done: u64, _total: u64) {}
}

/// One stage of a run: counts finished items and reports them.
pub struct Stage<'a> {
    progress: &'a dyn Progress,
    name: &'static str,
    done: AtomicU64,
    total: AtomicU64,
}

impl<'a> Stage<'a> {
    /// Start `name` with `total` items (reports `0 / total`).
    pub fn start(progress: &'a dyn Progress, name: &'static str, total: u64) -> Self {
        progress.update(name, 0, total);
        Self {
            progress,
            name,
            done: AtomicU64::new(0),
            total: AtomicU64::new(total),
        }
    }

    /// More items than announced (e.g. jobs enqueued during the run).
    pub fn grow_to(&self, total: u64) {
        self.total.fetch_max(total, Ordering::Relaxed);
    }

    /// One more item finished.
    pub fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.fetch_max(done, Ordering::Relaxed).max(done);
        self.progress.update(self.name, done, total);
    }
}

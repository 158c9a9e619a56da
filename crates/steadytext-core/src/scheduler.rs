//! Continuous batching for the native runtime.
//!
//! One scheduler thread owns the decoding of every generation request of a [`crate::LocalBackend`]
//! on our own kernels. Each iteration it advances every active request by one token and, at the
//! same time, the prompt of at most one newly admitted request by one prefill chunk, all in one
//! batched forward pass ([`Weights::forward`]): the weights are streamed once for the whole
//! batch, so eight concurrent requests cost far less than eight single ones. New requests join and
//! finished ones leave between iterations.
//!
//! Batching never changes a result: prompt chunks fall on the same boundaries as in
//! [`crate::prefill::prefill`], decisions are made by the same [`GreedyState`] as the
//! single-request loop, and every sequence's logits are bit-identical whatever else is in the
//! batch (see [`crate::transformer`]). Prompt prefixes are reused from the backend's [`PrefixCache`],
//! shared with the single-request path.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::constraint::MatcherConstraint;
use crate::decode::{DecodeParams, Decoded, GreedyState, Step, TokenConstraint};
use crate::error::{Error, Result};
use crate::prefill::{PrefixCache, PREFILL_CHUNK};
use crate::tokenizer::GgufTokenizer;
use crate::transformer::{KvCache, NativeModel, SeqStep, Weights};

/// Default bound on requests decoding together.
pub const DEFAULT_MAX_BATCH: usize = 16;

/// What a finished request gets back.
pub(crate) struct Finished {
    /// The decoded output.
    pub decoded: Decoded,
    /// Whether the constraint (if any) accepted the output.
    pub accepting: Option<bool>,
}

/// One generation request for the scheduler.
pub(crate) struct GenJob {
    /// The prompt's token ids (already checked against the context).
    pub ids: Vec<u32>,
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Stop strings (ignored when there is a constraint).
    pub stop: Vec<String>,
    /// Repetition penalty.
    pub repeat_penalty: f32,
    /// Window of the repetition penalty.
    pub repeat_window: usize,
    /// An output constraint.
    pub constraint: Option<MatcherConstraint>,
    /// Where the result goes.
    pub reply: oneshot::Sender<Result<Finished>>,
}

/// Handle to the scheduler thread; dropping it stops the thread once its work is done.
pub(crate) struct Scheduler {
    tx: mpsc::Sender<GenJob>,
}

impl Scheduler {
    /// Start the scheduler thread over `weights`.
    pub fn start(
        weights: Arc<Weights>,
        tokenizer: GgufTokenizer,
        eos: Vec<u32>,
        prefixes: Arc<Mutex<PrefixCache>>,
        max_batch: usize,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            weights,
            tokenizer,
            eos,
            prefixes,
            max_batch: max_batch.max(1),
        };
        std::thread::Builder::new()
            .name("steadytext-scheduler".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Inference(format!("cannot start the scheduler thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queue `job`; its result arrives on the job's reply channel.
    pub fn submit(&self, job: GenJob) -> Result<()> {
        self.tx
            .send(job)
            .map_err(|_| Error::Inference("the inference scheduler has stopped".into()))
    }
}

fn lock(m: &Mutex<PrefixCache>) -> MutexGuard<'_, PrefixCache> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request whose prompt is being fed, one chunk per iteration.
struct Prefilling {
    job: GenJob,
    kv: KvCache,
    pos: usize,
}

/// A request generating tokens.
struct Active {
    job: GenJob,
    kv: KvCache,
    state: GreedyState,
    /// The token to feed next.
    next: u32,
    /// The tokens the constraint allows after `next`, when few: only their logits are
    /// computed ([`SeqStep::rows`]).
    allowed: Option<Vec<u32>>,
}

/// Most tokens a constraint may allow for the step to compute only their rows of the output
/// head (of 262k for Gemma 3, 49k for SmolLM2): above that the full product is as cheap.
pub(crate) const ALLOWED_ROWS_LIMIT: usize = 1024;

/// The tokens `job`'s constraint allows next, when at most [`ALLOWED_ROWS_LIMIT`]. An error
/// here is not an answer: the step computes every row and the constraint's mask reports it.
fn allowed_next(job: &mut GenJob) -> Option<Vec<u32>> {
    let c = job.constraint.as_mut()?;
    TokenConstraint::allowed(c, ALLOWED_ROWS_LIMIT)
        .ok()
        .flatten()
}

struct Worker {
    weights: Arc<Weights>,
    tokenizer: GgufTokenizer,
    eos: Vec<u32>,
    /// Shared with the backend's single-request path.
    prefixes: Arc<Mutex<PrefixCache>>,
    max_batch: usize,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<GenJob>) {
        let mut queue: VecDeque<GenJob> = VecDeque::new();
        let mut prefilling: Option<Prefilling> = None;
        let mut active: Vec<Active> = Vec::new();
        loop {
            if queue.is_empty() && prefilling.is_none() && active.is_empty() {
                match rx.recv() {
                    Ok(job) => queue.push_back(job),
                    Err(_) => return,
                }
            }
            queue.extend(rx.try_iter());
            // Requests whose caller has gone away are dropped.
            queue.retain(|j| !j.reply.is_closed());
            active.retain(|a| !a.job.reply.is_closed());
            if prefilling.as_ref().is_some_and(|p| p.job.reply.is_closed()) {
                prefilling = None;
            }
            if prefilling.is_none() && active.len() < self.max_batch {
                if let Some(job) = queue.pop_front() {
                    prefilling = Some(self.admit(job));
                }
            }
            if prefilling.is_none() && active.is_empty() {
                continue;
            }
            if let Err(e) = self.iterate(&mut prefilling, &mut active) {
                let msg = e.to_string();
                for job in prefilling
                    .take()
                    .map(|p| p.job)
                    .into_iter()
                    .chain(active.drain(..).map(|a| a.job))
                {
                    let _ = job.reply.send(Err(Error::Inference(msg.clone())));
                }
            }
        }
    }

    /// Start a request: resume from the deepest cached prefix of its prompt, if any.
    fn admit(&mut self, job: GenJob) -> Prefilling {
        let hit = lock(&self.prefixes).lookup(&job.ids);
        match hit {
            Some((pos, mut state)) => {
                let kv = state
                    .as_native()
                    .map(NativeModel::take_kv)
                    .unwrap_or_default();
                let pos = if kv.len() == pos { pos } else { 0 };
                Prefilling { job, kv, pos }
            }
            None => Prefilling {
                job,
                kv: KvCache::default(),
                pos: 0,
            },
        }
    }

    /// One batched forward pass: one token for every active request, one prompt chunk for the
    /// request being prefilled.
    fn iterate(
        &mut self,
        prefilling: &mut Option<Prefilling>,
        active: &mut Vec<Active>,
    ) -> Result<()> {
        let next_tokens: Vec<[u32; 1]> = active.iter().map(|a| [a.next]).collect();
        // The prompt chunk: PREFILL_CHUNK tokens, or the rest (>= 1 token) when it is the last.
        let chunk = prefilling.as_ref().map(|p| {
            let len = p.job.ids.len();
            let end = if p.pos + PREFILL_CHUNK < len {
                p.pos + PREFILL_CHUNK
            } else {
                len
            };
            (p.pos, end, end == len)
        });
        // The first generated token's allowed set, before the prompt's last chunk runs.
        let first_allowed = match (prefilling.as_mut(), chunk) {
            (Some(p), Some((_, _, true))) => allowed_next(&mut p.job),
            _ => None,
        };
        let mut logits = {
            let mut steps: Vec<SeqStep<'_>> = active
                .iter_mut()
                .zip(&next_tokens)
                .map(|(a, t)| SeqStep {
                    kv: &mut a.kv,
                    tokens: t,
                    logits: true,
                    rows: a.allowed.as_deref(),
                })
                .collect();
            if let (Some(p), Some((start, end, last))) = (prefilling.as_mut(), chunk) {
                steps.push(SeqStep {
                    kv: &mut p.kv,
                    tokens: &p.job.ids[start..end],
                    logits: last,
                    rows: first_allowed.as_deref(),
                });
            }
            self.weights.forward(&mut steps)?
        };
        let prefill_logits = chunk.map(|_| logits.pop().unwrap_or_default());

        // Decide every active request's next token; finished ones reply and leave.
        let mut still = Vec::with_capacity(active.len());
        for (mut a, mut l) in active.drain(..).zip(logits) {
            match self.decide(&mut a.state, &mut a.job, &mut l) {
                Ok(Step::Continue(t)) => {
                    a.next = t;
                    a.allowed = allowed_next(&mut a.job);
                    still.push(a);
                }
                Ok(Step::Finished(reason)) => self.finish(a.job, a.state, reason),
                Err(e) => {
                    let _ = a.job.reply.send(Err(e));
                }
            }
        }
        *active = still;

        if let (Some((_, end, last)), Some(mut l)) = (chunk, prefill_logits) {
            let mut p = prefilling
                .take()
                .expect("a chunk implies a prefilling request");
            p.pos = end;
            if !last {
                let snapshot = NativeModel::with_kv(self.weights.clone(), p.kv.clone());
                lock(&self.prefixes).insert(&p.job.ids[..end], &snapshot);
                *prefilling = Some(p);
            } else {
                let mut state = GreedyState::new();
                match self.decide(&mut state, &mut p.job, &mut l) {
                    Ok(Step::Continue(t)) => {
                        let allowed = allowed_next(&mut p.job);
                        active.push(Active {
                            job: p.job,
                            kv: p.kv,
                            state,
                            next: t,
                            allowed,
                        })
                    }
                    Ok(Step::Finished(reason)) => self.finish(p.job, state, reason),
                    Err(e) => {
                        let _ = p.job.reply.send(Err(e));
                    }
                }
            }
        }
        Ok(())
    }

    fn decide(
        &self,
        state: &mut GreedyState,
        job: &mut GenJob,
        logits: &mut [f32],
    ) -> Result<Step> {
        let no_stop: [String; 0] = [];
        let params = DecodeParams {
            max_tokens: job.max_tokens,
            stop: if job.constraint.is_some() {
                &no_stop
            } else {
                &job.stop
            },
            eos: &self.eos,
            repeat_penalty: job.repeat_penalty,
            repeat_window: job.repeat_window,
        };
        state.step(
            logits,
            &self.tokenizer,
            &params,
            job.constraint
                .as_mut()
                .map(|c| c as &mut dyn TokenConstraint),
        )
    }

    fn finish(&self, job: GenJob, state: GreedyState, reason: crate::options::FinishReason) {
        let stop: &[String] = if job.constraint.is_some() {
            &[]
        } else {
            &job.stop
        };
        let result = state
            .finish(&self.tokenizer, stop, reason)
            .map(|decoded| Finished {
                decoded,
                accepting: job.constraint.as_ref().map(|c| c.is_accepting()),
            });
        let _ = job.reply.send(result);
    }
}

//! Prompt prefill in fixed chunks, with reuse of shared prefixes.
//!
//! A prompt is always fed to the model in chunks of [`PREFILL_CHUNK`] tokens, the last chunk
//! holding the rest (at least one token). The chunk boundaries depend on the prompt alone, so the
//! arithmetic is the same whether a prefix's KV state comes from the cache or is computed now:
//! reusing a prefix can never change an output. After each full chunk the KV state is kept in a
//! small LRU ([`PrefixCache`]) keyed by the exact token prefix; a later prompt that starts with the
//! same tokens (the same system prompt, few-shot examples or analysis template) resumes from the
//! deepest cached boundary instead of recomputing it.

use crate::error::Result;
use crate::model::LanguageModel;

/// Tokens per prefill chunk (and the granularity of prefix reuse).
pub const PREFILL_CHUNK: usize = 64;

/// Default bound on the tokens held by a [`PrefixCache`] (~46 KB of KV per token for
/// SmolLM2-135M, so ~190 MB).
pub const DEFAULT_PREFIX_CACHE_TOKENS: usize = 4096;

struct Entry {
    prefix: Vec<u32>,
    state: Box<dyn LanguageModel>,
    tick: u64,
}

/// KV states after chunk boundaries, least recently used evicted first.
pub struct PrefixCache {
    entries: Vec<Entry>,
    max_tokens: usize,
    tick: u64,
    hits: u64,
    reused_tokens: u64,
}

impl std::fmt::Debug for PrefixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache")
            .field("entries", &self.entries.len())
            .field("tokens", &self.tokens())
            .field("hits", &self.hits)
            .finish()
    }
}

impl PrefixCache {
    /// A cache holding at most `max_tokens` tokens of prefixes (0 disables it).
    pub fn new(max_tokens: usize) -> Self {
        Self {
            entries: Vec::new(),
            max_tokens,
            tick: 0,
            hits: 0,
            reused_tokens: 0,
        }
    }

    fn tokens(&self) -> usize {
        self.entries.iter().map(|e| e.prefix.len()).sum()
    }

    /// (prefix hits, tokens whose prefill was skipped) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.reused_tokens)
    }

    /// The deepest cached boundary that `ids` starts with, strictly before its end.
    pub(crate) fn lookup(&mut self, ids: &[u32]) -> Option<(usize, Box<dyn LanguageModel>)> {
        self.tick += 1;
        let tick = self.tick;
        let best = self
            .entries
            .iter_mut()
            .filter(|e| e.prefix.len() < ids.len() && ids.starts_with(&e.prefix))
            .max_by_key(|e| e.prefix.len())?;
        best.tick = tick;
        self.hits += 1;
        self.reused_tokens += best.prefix.len() as u64;
        Some((best.prefix.len(), best.state.fork()))
    }

    pub(crate) fn insert(&mut self, prefix: &[u32], state: &dyn LanguageModel) {
        if prefix.len() > self.max_tokens || self.entries.iter().any(|e| e.prefix == prefix) {
            return;
        }
        while self.tokens() + prefix.len() > self.max_tokens {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.tick)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    self.entries.swap_remove(i);
                }
                None => break,
            }
        }
        self.tick += 1;
        self.entries.push(Entry {
            prefix: prefix.to_vec(),
            state: state.fork(),
            tick: self.tick,
        });
    }
}

/// Feed `ids` to `model` from position 0 in fixed chunks, resuming from the deepest cached prefix;
/// returns the logits after the last token. `model` ends holding the KV state of all of `ids`.
pub fn prefill(
    model: &mut Box<dyn LanguageModel>,
    ids: &[u32],
    cache: &mut PrefixCache,
) -> Result<Vec<f32>> {
    let mut pos = 0;
    if let Some((p, state)) = cache.lookup(ids) {
        *model = state;
        pos = p;
    }
    while pos + PREFILL_CHUNK < ids.len() {
        model.feed(&ids[pos..pos + PREFILL_CHUNK], pos)?;
        pos += PREFILL_CHUNK;
        cache.insert(&ids[..pos], model.as_ref());
    }
    model.forward(&ids[pos..], pos)
}

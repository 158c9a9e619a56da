//! The token environment llguidance computes masks over, built from our own GGUF tokenizer.
//!
//! `toktrie_hf_tokenizers` would do this too, but it pins `tokenizers` 0.21 while candle pins
//! 0.23; adapting our tokenizer directly keeps one copy in the build and guarantees the masks are
//! computed over exactly the tokenizer that decodes the output. The environment is canonical:
//! `tokenize_bytes` runs the real BPE (a raw-vocabulary environment would turn off llguidance's
//! forcing and let the model spell keys in odd pieces).

use std::collections::HashMap;
use std::sync::Arc;

use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::error::{Error, Result};
use crate::tokenizer::GgufTokenizer;

struct GgufTokEnv {
    tokenizer: GgufTokenizer,
    trie: TokTrie,
}

impl TokenizerEnv for GgufTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer
                .inner()
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        })
    }
}

/// Build the llguidance token environment for `tokenizer`, with `eos` as the end token.
pub fn token_env(tokenizer: &GgufTokenizer, vocab_size: usize) -> Result<TokEnv> {
    let specials: HashMap<u32, String> = tokenizer
        .special_ids()
        .into_iter()
        .map(|(text, id)| (id, text))
        .collect();
    let n = vocab_size.max(tokenizer.vocab_size());
    let mut words: Vec<Vec<u8>> = Vec::with_capacity(n);
    for id in 0..n as u32 {
        let bytes = if let Some(text) = specials.get(&id) {
            let mut b = vec![TokTrie::SPECIAL_TOKEN_MARKER];
            b.extend_from_slice(text.as_bytes());
            b
        } else if let Some(piece) = tokenizer.id_to_token(id) {
            tokenizer.token_bytes(id).ok_or_else(|| {
                Error::Tokenizer(format!(
                    "token {id} ({piece:?}) is not valid in its vocabulary's encoding"
                ))
            })?
        } else {
            // Padding ids past the vocabulary: unreachable special tokens.
            let mut b = vec![TokTrie::SPECIAL_TOKEN_MARKER];
            b.extend_from_slice(format!("<[{id}]>").as_bytes());
            b
        };
        words.push(bytes);
    }
    let eos = tokenizer.special().eos.0;
    let mut info = TokRxInfo::new(n as u32, eos);
    info.tok_bos = tokenizer.special().bos.as_ref().map(|b| b.0);
    let trie = TokTrie::from(&info, &words);
    Ok(Arc::new(GgufTokEnv {
        tokenizer: tokenizer.clone(),
        trie,
    }))
}

//! A `tokenizers::Tokenizer` built from GGUF metadata alone: no separate `tokenizer.json`.
//!
//! The recipe (verified on SmolLM2): vocabulary from `tokenizer.ggml.tokens`, merges from
//! `tokenizer.ggml.merges` (split on the first space), byte-level BPE with the byte-level
//! pre-tokenizer (no prefix space) and decoder, and every control token
//! (`tokenizer.ggml.token_type == 3`) registered as a special token so the chat markers
//! (`<|im_start|>`, `<|im_end|>`) encode to their single ids.
//!
//! Prompts may carry literal spans ([`crate::prompt`]): their text is encoded with control-token
//! parsing off, so untrusted text never becomes a control token.
//!
//! candle's own `TokenizerFromGguf` does not know the `smollm` pre-tokenizer and adds a prefix space,
//! which changes the ChatML ids; this module does not.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};
use crate::prompt::{self, Piece};

/// GGUF `token_type` of control tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Special-token facts read from the GGUF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence id and text.
    pub bos: Option<(u32, String)>,
    /// End-of-sequence id and text.
    pub eos: (u32, String),
    /// Whether the model expects a BOS token before the prompt.
    pub add_bos: bool,
}

/// A tokenizer plus the special-token facts from the GGUF.
#[derive(Clone)]
pub struct GgufTokenizer {
    inner: Tokenizer,
    /// The same tokenizer with control-token parsing off (literal spans).
    literal: Tokenizer,
    /// Finds the text of any control token.
    control_text: AhoCorasick,
    special: SpecialTokens,
    vocab_size: usize,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("special", &self.special)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

fn md<'a>(ct: &'a Content, key: &str) -> Result<&'a Value> {
    ct.metadata
        .get(key)
        .ok_or_else(|| Error::Tokenizer(format!("GGUF metadata has no {key}")))
}

fn md_u32(ct: &Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok())
}

impl GgufTokenizer {
    /// Build the tokenizer from a parsed GGUF header.
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let model = md(ct, "tokenizer.ggml.model")?
            .to_string()
            .map_err(tok_err)?;
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "tokenizer model {model:?} is not supported (byte-level BPE, \"gpt2\", is)"
            )));
        }
        let tokens = md(ct, "tokenizer.ggml.tokens")?.to_vec().map_err(tok_err)?;
        let tokens: Vec<String> = tokens
            .iter()
            .map(|v| v.to_string().cloned().map_err(tok_err))
            .collect::<Result<_>>()?;
        let merges = md(ct, "tokenizer.ggml.merges")?.to_vec().map_err(tok_err)?;
        let merges: Vec<(String, String)> = merges
            .iter()
            .map(|v| {
                let s = v.to_string().map_err(tok_err)?;
                let (a, b) = s
                    .split_once(' ')
                    .ok_or_else(|| Error::Tokenizer(format!("malformed merge {s:?}")))?;
                Ok((a.to_string(), b.to_string()))
            })
            .collect::<Result<_>>()?;
        let token_types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(tok_err)?
                .iter()
                .map(|t| t.to_i32().map_err(tok_err))
                .collect::<Result<_>>()?,
            None => vec![1; tokens.len()],
        };

        let mut vocab = Vocab::default();
        for (id, tok) in tokens.iter().enumerate() {
            vocab.insert(tok.clone(), id as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tok_err)?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(
            tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true),
        ));
        inner.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL)
            .map(|(tok, _)| AddedToken::from(tok.clone(), true))
            .collect();
        let control_text =
            AhoCorasick::new(specials.iter().map(|t| t.content.as_str())).map_err(tok_err)?;
        inner.add_special_tokens(specials).map_err(tok_err)?;
        let mut literal = inner.clone();
        literal.set_encode_special_tokens(true);

        let name = |id: u32| tokens.get(id as usize).cloned().unwrap_or_default();
        let eos_id = md_u32(ct, "tokenizer.ggml.eos_token_id")
            .ok_or_else(|| Error::Tokenizer("GGUF metadata has no eos token id".into()))?;
        let bos = md_u32(ct, "tokenizer.ggml.bos_token_id").map(|id| (id, name(id)));
        let add_bos = ct
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        Ok(Self {
            vocab_size: tokens.len(),
            inner,
            literal,
            control_text,
            special: SpecialTokens {
                bos,
                eos: (eos_id, name(eos_id)),
                add_bos,
            },
        })
    }

    /// Encode a rendered prompt: in markup, special-token text (e.g. `<|im_start|>`) maps to
    /// its single id; in literal spans ([`crate::prompt`]) it is plain text. Adds BOS when the
    /// model asks for it.
    ///
    /// A text without span markers is encoded in one piece, exactly as before literal spans
    /// existed.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        if self.special.add_bos {
            if let Some((bos, _)) = &self.special.bos {
                ids.push(*bos);
            }
        }
        if !prompt::has_literal(text) && !text.contains(prompt::LITERAL_CLOSE) {
            let enc = self.inner.encode_fast(text, false).map_err(tok_err)?;
            ids.extend_from_slice(enc.get_ids());
            return Ok(ids);
        }
        for piece in prompt::pieces(text) {
            let (tokenizer, t) = match piece {
                Piece::Markup(t) => (&self.inner, t),
                Piece::Literal(t) => (&self.literal, t),
            };
            let enc = tokenizer.encode_fast(t, false).map_err(tok_err)?;
            ids.extend_from_slice(enc.get_ids());
        }
        Ok(ids)
    }

    /// Whether `text` contains the text of any control token of this vocabulary.
    pub fn contains_control_text(&self, text: &str) -> bool {
        self.control_text.is_match(text)
    }

    /// Decode ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(tok_err)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Special-token facts.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Token strings by id, as stored in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Ids of every special token, by their text.
    pub fn special_ids(&self) -> HashMap<String, u32> {
        self.inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content, id))
            .collect()
    }
}

//! A `tokenizers::Tokenizer` built from GGUF metadata alone: no separate `tokenizer.json`.
//!
//! Two vocabularies (`tokenizer.ggml.model`):
//!
//! - `gpt2` (SmolLM2): vocabulary from `tokenizer.ggml.tokens`, merges from
//!   `tokenizer.ggml.merges` (split on the first space), byte-level BPE with the byte-level
//!   pre-tokenizer (no prefix space) and decoder.
//! - `llama` (SentencePiece BPE, e.g. Gemma 3): no merges in the file, only a score per piece.
//!   SentencePiece merges, at each step, the adjacent pair whose joined piece has the highest
//!   score; that is BPE with the merges `(left, right)` of every piece, ranked by the piece's
//!   score (see [`spm_merges`]). Spaces are written `▁`, a prefix space only when
//!   `tokenizer.ggml.add_space_prefix` asks for it, and characters outside the vocabulary fall
//!   back to byte pieces (`<0x0A>`).
//!
//! In both, every control token (`tokenizer.ggml.token_type == 3`) is registered as a special
//! token so the chat markers (`<|im_start|>`, `<start_of_turn>`) encode to their single ids.
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

/// GGUF `token_type` of byte pieces (`<0x0A>`).
const TOKEN_TYPE_BYTE: i32 = 6;

/// The space marker of SentencePiece vocabularies.
const SPM_SPACE: char = '\u{2581}';

/// How a vocabulary writes text in its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceEncoding {
    /// GPT-2's byte-level alphabet (one printable character per byte).
    ByteLevel,
    /// SentencePiece: UTF-8 with `▁` for a space, and `<0xXX>` byte pieces.
    SentencePiece,
}

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
    encoding: PieceEncoding,
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
        let tokens = md(ct, "tokenizer.ggml.tokens")?.to_vec().map_err(tok_err)?;
        let tokens: Vec<String> = tokens
            .iter()
            .map(|v| v.to_string().cloned().map_err(tok_err))
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
        let (mut inner, encoding) = match model.as_str() {
            "gpt2" => {
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
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .build()
                    .map_err(tok_err)?;
                let mut inner = Tokenizer::new(bpe);
                inner.with_pre_tokenizer(Some(
                    tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true),
                ));
                inner.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
                (inner, PieceEncoding::ByteLevel)
            }
            "llama" => {
                let scores: Vec<f32> = match ct.metadata.get("tokenizer.ggml.scores") {
                    Some(v) => v
                        .to_vec()
                        .map_err(tok_err)?
                        .iter()
                        .map(|s| s.to_f32().map_err(tok_err))
                        .collect::<Result<_>>()?,
                    None => (0..tokens.len()).map(|i| -(i as f32)).collect(),
                };
                let merges = spm_merges(&tokens, &scores, &token_types);
                let mut builder = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .byte_fallback(true);
                if let Some(unk) = md_u32(ct, "tokenizer.ggml.unknown_token_id")
                    .and_then(|id| tokens.get(id as usize))
                {
                    builder = builder.unk_token(unk.clone());
                }
                let mut inner = Tokenizer::new(builder.build().map_err(tok_err)?);
                let space = SPM_SPACE.to_string();
                let replace = tokenizers::normalizers::replace::Replace::new(" ", space.as_str())
                    .map_err(tok_err)?;
                let prefix = ct
                    .metadata
                    .get("tokenizer.ggml.add_space_prefix")
                    .and_then(|v| v.to_bool().ok())
                    .unwrap_or(true);
                use tokenizers::normalizers::NormalizerWrapper as N;
                inner
                    .with_normalizer(Some(if prefix {
                        N::Sequence(tokenizers::normalizers::Sequence::new(vec![
                            N::Prepend(tokenizers::normalizers::Prepend::new(space.clone())),
                            N::Replace(replace),
                        ]))
                    } else {
                        N::Replace(replace)
                    }))
                    .map_err(tok_err)?;
                use tokenizers::decoders::DecoderWrapper as D;
                let unspace = tokenizers::normalizers::replace::Replace::new(space.as_str(), " ")
                    .map_err(tok_err)?;
                let mut steps = vec![
                    D::Replace(unspace),
                    D::ByteFallback(tokenizers::decoders::byte_fallback::ByteFallback::new()),
                    D::Fuse(tokenizers::decoders::fuse::Fuse::new()),
                ];
                if prefix {
                    steps.push(D::Strip(tokenizers::decoders::strip::Strip::new(' ', 1, 0)));
                }
                inner.with_decoder(Some(tokenizers::decoders::sequence::Sequence::new(steps)));
                (inner, PieceEncoding::SentencePiece)
            }
            other => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer model {other:?} is not supported (byte-level BPE, \"gpt2\", and \
                     SentencePiece BPE, \"llama\", are)"
                )))
            }
        };
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
            encoding,
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

    /// Encode text that continues a prompt (a choice option, a candidate word): as
    /// [`Self::encode`] without the BOS token a prompt starts with.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if self.special.add_bos {
            if let Some((bos, _)) = &self.special.bos {
                if ids.first() == Some(bos) {
                    ids.remove(0);
                }
            }
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

    /// How this vocabulary writes text in its pieces.
    pub fn piece_encoding(&self) -> PieceEncoding {
        self.encoding
    }

    /// The bytes a (non-special) token stands for, or `None` for an id outside the vocabulary
    /// or a piece that is not valid in its encoding.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let piece = self.inner.id_to_token(id)?;
        match self.encoding {
            PieceEncoding::ByteLevel => {
                let decoder = byte_level_alphabet();
                piece.chars().map(|c| decoder.get(&c).copied()).collect()
            }
            PieceEncoding::SentencePiece => Some(spm_piece_bytes(&piece)),
        }
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

/// The merges of a SentencePiece BPE vocabulary, best first: for every normal piece, each way of
/// writing it as two pieces of the vocabulary, ranked by the joined piece's score (higher
/// first; ties by id). Byte and control pieces never take part.
pub fn spm_merges(tokens: &[String], scores: &[f32], types: &[i32]) -> Vec<(String, String)> {
    let mergeable = |id: usize| {
        let t = types.get(id).copied().unwrap_or(1);
        t != TOKEN_TYPE_CONTROL && t != TOKEN_TYPE_BYTE
    };
    let index: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .filter(|&(id, _)| mergeable(id))
        .map(|(id, t)| (t.as_str(), id))
        .collect();
    let mut found: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if !mergeable(id) || piece.chars().nth(1).is_none() {
            continue;
        }
        for (cut, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(cut);
            if let (Some(&li), Some(&ri)) = (index.get(l), index.get(r)) {
                found.push((scores.get(id).copied().unwrap_or(0.0), id, li, ri));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    found
        .into_iter()
        .map(|(_, _, l, r)| (tokens[l].clone(), tokens[r].clone()))
        .collect()
}

/// The bytes of a SentencePiece piece: `<0xAB>` is one byte, `▁` a space, the rest UTF-8.
fn spm_piece_bytes(piece: &str) -> Vec<u8> {
    if let Some(hex) = piece
        .strip_prefix("<0x")
        .and_then(|p| p.strip_suffix('>'))
        .filter(|h| h.len() == 2)
    {
        if let Ok(b) = u8::from_str_radix(hex, 16) {
            return vec![b];
        }
    }
    piece.replace(SPM_SPACE, " ").into_bytes()
}

/// GPT-2's byte-level alphabet: the printable character standing for each byte.
pub(crate) fn byte_level_alphabet() -> &'static HashMap<char, u8> {
    static MAP: std::sync::OnceLock<HashMap<char, u8>> = std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let self_mapped =
            |c: char| matches!(c, '!'..='~' | '\u{00A1}'..='\u{00AC}' | '\u{00AE}'..='\u{00FF}');
        let mut map = HashMap::with_capacity(256);
        let mut next = 0x100u32;
        for byte in 0..=255u8 {
            let c = byte as char;
            if self_mapped(c) {
                map.insert(c, byte);
            } else {
                map.insert(char::from_u32(next).expect("valid code point"), byte);
                next += 1;
            }
        }
        map
    })
}

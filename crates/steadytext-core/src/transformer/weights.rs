//! Loading a llama GGUF into [`LlamaWeights`]: metadata into [`LlamaConfig`], every matrix
//! repacked into a [`QMatrix`] (see [`crate::quant::blocks`] for which formats are exact).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::llama::{read_header, supported_architecture};
use crate::quant::{blocks, Isa, QData, QMatrix};

use super::linear::Linear;
use super::math::Rope;

/// Hyper-parameters of a llama model, from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Embedding width.
    pub dim: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Hidden width of the feed-forward block.
    pub ffn_dim: usize,
    /// Vocabulary size (logits per step).
    pub vocab: usize,
    /// RMS-norm epsilon.
    pub eps: f32,
    /// Rotary base frequency.
    pub rope_base: f32,
    /// Usable context (positions with rotary tables).
    pub context: usize,
}

impl LlamaConfig {
    /// Width of the key (and value) projections.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct Layer {
    pub(crate) attn_norm: Vec<f32>,
    /// q, k, v projections (one parallel pass).
    pub(crate) qkv: [QMatrix; 3],
    pub(crate) o: QMatrix,
    pub(crate) ffn_norm: Vec<f32>,
    /// gate and up projections (one parallel pass).
    pub(crate) gate_up: [QMatrix; 2],
    pub(crate) down: QMatrix,
}

/// All weights of a llama model, ready for the forward pass (`transformer::forward`).
#[derive(Debug)]
pub struct LlamaWeights {
    pub(crate) config: LlamaConfig,
    pub(crate) embed: QMatrix,
    /// The output projection, or `None` when tied to `embed`.
    pub(crate) lm_head: Option<QMatrix>,
    pub(crate) out_norm: Vec<f32>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) rope: Rope,
    pub(crate) isa: Isa,
    /// Names of tensors that had to be re-quantised to eight bits (lossy).
    pub(crate) requantized: Vec<String>,
    /// Work buffers of finished steps, reused by the next ones (one per concurrent step).
    pub(crate) scratch: std::sync::Mutex<Vec<super::forward::Scratch>>,
}

/// Upper bound on the context we prepare rotary tables and KV caches for.
pub const MAX_CONTEXT: usize = 4096;

pub(super) fn md_u32(ct: &Content, key: &str, path: &Path) -> Result<usize> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize)
        .ok_or_else(|| Error::ModelLoad {
            path: path.to_path_buf(),
            reason: format!("missing metadata {key}"),
        })
}

pub(super) fn md_f32(ct: &Content, key: &str) -> Option<f32> {
    ct.metadata.get(key).and_then(|v| v.to_f32().ok())
}

impl LlamaConfig {
    /// Read the hyper-parameters of a llama GGUF header.
    pub fn from_gguf(ct: &Content, path: &Path) -> Result<Self> {
        let dim = md_u32(ct, "llama.embedding_length", path)?;
        let heads = md_u32(ct, "llama.attention.head_count", path)?;
        let kv_heads = md_u32(ct, "llama.attention.head_count_kv", path).unwrap_or(heads);
        let head_dim = dim / heads.max(1);
        let vocab = crate::llama::vocab_size(ct);
        let context = md_u32(ct, "llama.context_length", path)
            .unwrap_or(MAX_CONTEXT)
            .min(MAX_CONTEXT);
        let config = Self {
            layers: md_u32(ct, "llama.block_count", path)?,
            dim,
            heads,
            kv_heads,
            head_dim,
            ffn_dim: md_u32(ct, "llama.feed_forward_length", path)?,
            vocab,
            eps: md_f32(ct, "llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_base: md_f32(ct, "llama.rope.freq_base").unwrap_or(10_000.0),
            context,
        };
        let rope_dim = md_u32(ct, "llama.rope.dimension_count", path).unwrap_or(head_dim);
        if heads == 0
            || !dim.is_multiple_of(heads)
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !dim.is_multiple_of(32)
            || !config.ffn_dim.is_multiple_of(32)
            || rope_dim != head_dim
            || !head_dim.is_multiple_of(2)
        {
            return Err(Error::ModelLoad {
                path: path.to_path_buf(),
                reason: format!("unsupported llama shape {config:?} (rope dims {rope_dim})"),
            });
        }
        Ok(config)
    }
}

/// Reads tensors of one GGUF file. Every read opens its own handle, so matrices load and
/// repack in parallel without holding the whole file in memory.
pub(super) struct TensorReader<'a> {
    pub ct: &'a Content,
    pub path: &'a Path,
}

/// One tensor's bytes as stored in the file.
struct RawTensor {
    dtype: GgmlDType,
    dims: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorReader<'_> {
    pub(super) fn err(&self, reason: String) -> Error {
        Error::ModelLoad {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn raw(&self, name: &str) -> Result<RawTensor> {
        let info = self
            .ct
            .tensor_infos
            .get(name)
            .ok_or_else(|| self.err(format!("missing tensor {name}")))?;
        let dims = info.shape.dims().to_vec();
        let elems: usize = dims.iter().product();
        let dtype = info.ggml_dtype;
        let mut bytes = vec![0u8; elems / dtype.block_size() * dtype.type_size()];
        std::fs::File::open(self.path)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(self.ct.tensor_data_offset + info.offset))?;
                f.read_exact(&mut bytes)
            })
            .map_err(|e| self.err(format!("reading {name}: {e}")))?;
        Ok(RawTensor { dtype, dims, bytes })
    }

    /// Every value of a tensor in a format without a native kernel, as f32 (through candle).
    fn dequantized(&self, name: &str, raw: RawTensor) -> Result<Vec<f32>> {
        qtensor_from_ggml(raw.dtype, &raw.bytes, raw.dims, &Device::Cpu)
            .and_then(|t| t.dequantize(&Device::Cpu))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.err(format!("{name}: {e}")))
    }

    pub(super) fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let raw = self.raw(name)?;
        if raw.dims.iter().product::<usize>() != len {
            return Err(self.err(format!("{name}: shape {:?}, expected {len}", raw.dims)));
        }
        match raw.dtype {
            GgmlDType::F32 => Ok(raw
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            _ => self.dequantized(name, raw),
        }
    }

    /// A `rows × cols` matrix, and its name when it was converted lossily.
    pub(super) fn matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<(QMatrix, Option<String>)> {
        let raw = self.raw(name)?;
        if raw.dims != [rows, cols] {
            return Err(self.err(format!(
                "{name}: shape {:?}, expected [{rows}, {cols}]",
                raw.dims
            )));
        }
        let data = match raw.dtype {
            GgmlDType::Q4_0 => Some(QData::Q4(blocks::from_q4_0(&raw.bytes))),
            GgmlDType::Q4_1 => Some(QData::Q4(blocks::from_q4_1(&raw.bytes))),
            GgmlDType::Q4K => Some(QData::Q4(blocks::from_q4_k(&raw.bytes))),
            GgmlDType::Q8_0 => Some(QData::Q8(blocks::from_q8_0(&raw.bytes))),
            _ => None,
        };
        match data {
            Some(d) => QMatrix::new(rows, cols, d)
                .map(|m| (m, None))
                .ok_or_else(|| self.err(format!("{name}: bad block count"))),
            None => {
                let lossy = format!("{name} ({:?})", raw.dtype);
                let values = self.dequantized(name, raw)?;
                QMatrix::quantize_q8(rows, cols, &values)
                    .map(|m| (m, Some(lossy)))
                    .ok_or_else(|| self.err(format!("{name}: cols {cols} not a multiple of 32")))
            }
        }
    }
}

impl TensorReader<'_> {
    /// A `rows × cols` projection on the native kernels, and its name when it was converted
    /// lossily: Q5_0 becomes eight-bit blocks and Q6_K the sum of two eight-bit matrices, both
    /// exactly; the formats of [`Self::matrix`] as there.
    pub(super) fn linear(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<(Linear, Option<String>)> {
        let info = self
            .ct
            .tensor_infos
            .get(name)
            .ok_or_else(|| self.err(format!("missing tensor {name}")))?;
        let exact = |data: QData| {
            QMatrix::new(rows, cols, data)
                .ok_or_else(|| self.err(format!("{name}: bad block count")))
        };
        match info.ggml_dtype {
            GgmlDType::Q5_0 | GgmlDType::Q6K => {
                let raw = self.raw(name)?;
                if raw.dims != [rows, cols] {
                    return Err(self.err(format!(
                        "{name}: shape {:?}, expected [{rows}, {cols}]",
                        raw.dims
                    )));
                }
                let linear = if raw.dtype == GgmlDType::Q5_0 {
                    Linear::one(exact(QData::Q8(blocks::from_q5_0(&raw.bytes)))?)
                } else {
                    let (a, b) = blocks::from_q6_k_halves(&raw.bytes);
                    Linear::sum_of(exact(QData::Q8(a))?, exact(QData::Q8(b))?)
                };
                Ok((linear, None))
            }
            _ => self
                .matrix(name, rows, cols)
                .map(|(m, lossy)| (Linear::one(m), lossy)),
        }
    }
}

impl LlamaWeights {
    /// Load the llama GGUF at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let (ct, _) = read_header(path)?;
        Self::from_header(path, &ct)
    }

    /// Load the weights of the GGUF at `path` whose header was already read (`ct`). Matrices
    /// are read and repacked in parallel on the rayon pool.
    pub fn from_header(path: &Path, ct: &Content) -> Result<Self> {
        let start = std::time::Instant::now();
        supported_architecture(ct, path)?;
        let config = LlamaConfig::from_gguf(ct, path)?;
        let c = &config;
        let tr = TensorReader { ct, path };
        let tied = !ct.tensor_infos.contains_key("output.weight");
        let mut specs = vec![("token_embd.weight".to_string(), c.vocab, c.dim)];
        if !tied {
            specs.push(("output.weight".to_string(), c.vocab, c.dim));
        }
        // The matrices of one block, in the order they are assembled into a `Layer` below.
        let block = [
            ("attn_q", c.dim, c.dim),
            ("attn_k", c.kv_dim(), c.dim),
            ("attn_v", c.kv_dim(), c.dim),
            ("attn_output", c.dim, c.dim),
            ("ffn_gate", c.ffn_dim, c.dim),
            ("ffn_up", c.ffn_dim, c.dim),
            ("ffn_down", c.dim, c.ffn_dim),
        ];
        for l in 0..c.layers {
            for (m, rows, cols) in block {
                specs.push((format!("blk.{l}.{m}.weight"), rows, cols));
            }
        }
        // Largest first, so the embedding does not finish last on one thread.
        let mut order: Vec<usize> = (0..specs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(specs[i].1 * specs[i].2));
        let mut loaded: Vec<(usize, (QMatrix, Option<String>))> = order
            .into_par_iter()
            .map(|i| {
                let (name, rows, cols) = &specs[i];
                tr.matrix(name, *rows, *cols).map(|m| (i, m))
            })
            .collect::<Result<_>>()?;
        loaded.sort_by_key(|(i, _)| *i);
        let requantized: Vec<String> = loaded
            .iter_mut()
            .filter_map(|(_, (_, lossy))| lossy.take())
            .collect();
        let mut matrices = loaded.into_iter().map(|(_, (m, _))| m);
        let mut next = || matrices.next().expect("one matrix per spec");
        let embed = next();
        let lm_head = (!tied).then(&mut next);
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let [q, k, v, o, gate, up, down] = std::array::from_fn(|_| next());
            layers.push(Layer {
                attn_norm: tr.vector(&n("attn_norm"), c.dim)?,
                qkv: [q, k, v],
                o,
                ffn_norm: tr.vector(&n("ffn_norm"), c.dim)?,
                gate_up: [gate, up],
                down,
            });
        }
        let out_norm = tr.vector("output_norm.weight", c.dim)?;
        let rope = Rope::new(c.head_dim, c.rope_base, c.context);
        tracing::debug!("weights loaded in {:?}", start.elapsed());
        if !requantized.is_empty() {
            tracing::info!(
                "re-quantised to 8 bits (no native kernel): {}",
                requantized.join(", ")
            );
        }
        Ok(Self {
            config,
            embed,
            lm_head,
            out_norm,
            layers,
            rope,
            isa: Isa::detect(),
            requantized,
            scratch: Default::default(),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Use another instruction set (e.g. to compare kernels); results are bit-identical.
    pub fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// Tensors re-quantised to eight bits because no kernel reads their format (empty for the
    /// default model).
    pub fn requantized(&self) -> &[String] {
        &self.requantized
    }

    /// Bytes of weights in memory.
    pub fn bytes(&self) -> usize {
        let layer_bytes: usize = self
            .layers
            .par_iter()
            .map(|l| {
                l.qkv.iter().map(QMatrix::bytes).sum::<usize>()
                    + l.o.bytes()
                    + l.gate_up.iter().map(QMatrix::bytes).sum::<usize>()
                    + l.down.bytes()
                    + 8 * l.attn_norm.len()
            })
            .sum();
        layer_bytes + self.embed.bytes() + self.lm_head.as_ref().map_or(0, QMatrix::bytes)
    }
}

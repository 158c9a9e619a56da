//! GGUF header helpers and the llama architecture on candle's quantized llama implementation.
//!
//! The default runtime is our own ([`Kernels::Native`], see [`crate::transformer`]); candle's
//! `quantized_llama` stays available as a reference ([`Kernels::Candle`], [`Kernels::CandleF32`]
//! with exact `f32` weights) and as the previous fast path ([`Kernels::CandleQ8_0`]: candle 0.11
//! has no SIMD kernel for Q4_1, so Q4_1 tensors are re-quantised to Q8_0 at load). The variant is
//! part of the backend identity and therefore of every cache key.

use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::{ModelWeights, MAX_SEQ_LEN};

use crate::error::{Error, Result};
use crate::model::LanguageModel;

/// Architectures this backend runs (`general.architecture`); candle's reference paths
/// ([`Kernels::Candle`] and the others) run llama only.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3"];

/// Which implementation runs the model, and how its weights are stored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Our own forward pass and integer SIMD kernels ([`crate::transformer`]) on the file's own
    /// formats (Q4_0, Q4_1, Q4_K, Q8_0; others re-quantised to 8 bits). Batched decoding.
    #[default]
    Native,
    /// candle's `quantized_llama` on the file's formats (Q4_1 runs on a scalar path: slow).
    Candle,
    /// candle with Q4_1 tensors re-quantised to Q8_0 (candle's SIMD kernels; lossy).
    CandleQ8_0,
    /// candle with every weight dequantised to `f32`: the exact weights, the reference for
    /// accuracy tests (slow decode, ~4x the memory).
    CandleF32,
}

impl Kernels {
    /// A stable name, used in the backend identity.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Native => "native-v4",
            Kernels::Candle => "candle",
            Kernels::CandleQ8_0 => "candle-q4_1-as-q8_0",
            Kernels::CandleF32 => "candle-f32",
        }
    }

    /// The target format of a load-time conversion, if any.
    fn convert_to(self) -> Option<GgmlDType> {
        match self {
            Kernels::CandleQ8_0 => Some(GgmlDType::Q8_0),
            Kernels::CandleF32 => Some(GgmlDType::F32),
            Kernels::Native | Kernels::Candle => None,
        }
    }
}

/// A quantized llama on the CPU.
#[derive(Clone)]
pub struct CandleLlama {
    weights: ModelWeights,
    context: usize,
    vocab: usize,
    device: Device,
}

fn load_err(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::ModelLoad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A buffered reader over a GGUF file.
pub type GgufReader = BufReader<std::fs::File>;

/// Read the GGUF header (metadata and tensor table) of `path`.
pub fn read_header(path: &Path) -> Result<(Content, GgufReader)> {
    let file = std::fs::File::open(path).map_err(|e| Error::ModelLoad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let ct = Content::read(&mut reader).map_err(load_err(path))?;
    Ok((ct, reader))
}

/// The usable context window: the GGUF's `<architecture>.context_length`, capped by the rotary
/// tables we prepare (`MAX_SEQ_LEN`, the same as [`crate::transformer::MAX_CONTEXT`]).
pub fn context_length(ct: &Content) -> usize {
    ct.metadata
        .get(&format!("{}.context_length", architecture(ct)))
        .and_then(|v| v.to_u32().ok())
        .map(|c| c as usize)
        .unwrap_or(MAX_SEQ_LEN)
        .min(MAX_SEQ_LEN)
}

/// Tokens in the vocabulary of a GGUF header (`tokenizer.ggml.tokens`; 0 when absent): the
/// logits per step.
pub fn vocab_size(ct: &Content) -> usize {
    ct.metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.len())
        .unwrap_or(0)
}

/// The architecture of a GGUF header, or [`Error::UnsupportedArchitecture`] when this backend
/// cannot run it.
pub fn supported_architecture(ct: &Content, path: &Path) -> Result<String> {
    let arch = architecture(ct);
    if SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        Ok(arch)
    } else {
        Err(Error::UnsupportedArchitecture {
            architecture: arch,
            path: path.to_path_buf(),
            supported: SUPPORTED_ARCHITECTURES.join(", "),
        })
    }
}

/// `general.architecture` of a GGUF header.
pub fn architecture(ct: &Content) -> String {
    ct.metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default()
}

impl CandleLlama {
    /// Load the weights of the llama GGUF at `path`.
    ///
    /// With a converting variant ([`Kernels::CandleQ8_0`]) and a `derived_dir`, the converted
    /// weights are written once to `derived_dir/<fingerprint>.<variant>.gguf` (atomically) and
    /// loaded from there afterwards. [`Kernels::Native`] is treated as [`Kernels::Candle`].
    pub fn load(path: &Path, kernels: Kernels, derived: Option<(&Path, &str)>) -> Result<Self> {
        let (ct, mut reader) = read_header(path)?;
        let arch = supported_architecture(&ct, path)?;
        if arch != "llama" {
            return Err(Error::UnsupportedArchitecture {
                architecture: format!("{arch} (with kernels {})", kernels.name()),
                path: path.to_path_buf(),
                supported: format!("llama; {arch} runs on the native kernels"),
            });
        }
        let device = Device::Cpu;
        let context = context_length(&ct);
        let vocab = vocab_size(&ct);
        let target = kernels.convert_to();
        let needs_conversion = match target {
            Some(GgmlDType::F32) => true,
            Some(_) => ct
                .tensor_infos
                .values()
                .any(|t| t.ggml_dtype == GgmlDType::Q4_1),
            None => false,
        };
        let weights = if !needs_conversion {
            ModelWeights::from_gguf(ct, &mut reader, &device).map_err(load_err(path))?
        } else {
            let derived_path: Option<PathBuf> = derived
                .filter(|_| target != Some(GgmlDType::F32))
                .map(|(dir, fp)| dir.join(format!("{fp}.{}.gguf", kernels.name())));
            match derived_path.as_deref().map(read_header) {
                Some(Ok((ct2, mut r2))) => match ModelWeights::from_gguf(ct2, &mut r2, &device) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!("derived weights unreadable ({e}); rebuilding");
                        build_converted(path, &ct, &mut reader, target, derived_path.as_deref())?
                    }
                },
                _ => build_converted(path, &ct, &mut reader, target, derived_path.as_deref())?,
            }
        };
        Ok(Self {
            weights,
            context,
            vocab,
            device,
        })
    }
}

fn build_converted(
    path: &Path,
    ct: &Content,
    reader: &mut GgufReader,
    target: Option<GgmlDType>,
    save_to: Option<&Path>,
) -> Result<ModelWeights> {
    let device = &Device::Cpu;
    let target = target.unwrap_or(GgmlDType::Q8_0);
    let bytes = converted_gguf(ct, reader, device, target).map_err(load_err(path))?;
    if let Some(target) = save_to {
        let dir = target.parent().unwrap_or(Path::new("."));
        if let Err(e) = crate::cache::write_atomic(dir, target, &bytes) {
            tracing::warn!("could not save re-quantised weights: {e}");
        }
    }
    let mut cursor = Cursor::new(bytes);
    let ct2 = Content::read(&mut cursor).map_err(load_err(path))?;
    ModelWeights::from_gguf(ct2, &mut cursor, device).map_err(load_err(path))
}

/// A GGUF image, in memory, with every Q4_1 tensor re-quantised to Q8_0 (`target` Q8_0) or
/// every tensor dequantised (`target` F32).
fn converted_gguf<R: Read + Seek>(
    ct: &Content,
    file: &mut R,
    device: &Device,
    target: GgmlDType,
) -> candle_core::Result<Vec<u8>> {
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let t = ct.tensor(file, name, device)?;
        let convert = match target {
            GgmlDType::F32 => t.dtype() != GgmlDType::F32,
            _ => t.dtype() == GgmlDType::Q4_1,
        };
        let t = if convert {
            QTensor::quantize(&t.dequantize(device)?, target)?
        } else {
            t
        };
        tensors.push(t);
    }
    let mut keys: Vec<&String> = ct.metadata.keys().collect();
    keys.sort();
    let metadata: Vec<(&str, &gguf_file::Value)> = keys
        .iter()
        .map(|k| (k.as_str(), &ct.metadata[*k]))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = names
        .iter()
        .map(|n| n.as_str())
        .zip(tensors.iter())
        .collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    Ok(out.into_inner())
}

impl LanguageModel for CandleLlama {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, pos)?;
        Ok(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    fn context_length(&self) -> usize {
        self.context
    }

    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn fork(&self) -> Box<dyn LanguageModel> {
        Box::new(self.clone())
    }
}

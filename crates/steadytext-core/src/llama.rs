//! The llama architecture from a GGUF file, on candle's quantized llama implementation.
//!
//! SmolLM2 (the default model) is a llama. Its GGUF stores most weights as Q4_1, which candle
//! 0.11 multiplies on a generic scalar path; re-quantising those tensors to Q8_0 at load (the
//! default, [`Requantize::Q8_0`]) uses candle's SIMD kernels and makes prefill ~5x and decode
//! ~3x faster, at the cost of ~70 MB more memory. Q4_1 -> Q8_0 keeps almost every greedy token
//! (Q4_1 -> Q4_0 does not, so it is not offered). The variant is part of the backend identity
//! and therefore of every cache key.

use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::{ModelWeights, MAX_SEQ_LEN};

use crate::error::{Error, Result};
use crate::model::LanguageModel;

/// Architectures this backend runs (`general.architecture`).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// How weights are stored in memory after load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requantize {
    /// Keep the file's formats.
    Native,
    /// Re-quantise Q4_1 tensors to Q8_0 (candle has SIMD kernels for Q8_0, not for Q4_1).
    #[default]
    Q8_0,
}

impl Requantize {
    /// A stable name, used in the backend identity.
    pub fn name(self) -> &'static str {
        match self {
            Requantize::Native => "native",
            Requantize::Q8_0 => "q4_1-as-q8_0",
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

/// The usable context window: the GGUF's `llama.context_length`, capped by candle's rotary
/// tables (`MAX_SEQ_LEN`).
pub fn context_length(ct: &Content) -> usize {
    ct.metadata
        .get("llama.context_length")
        .and_then(|v| v.to_u32().ok())
        .map(|c| c as usize)
        .unwrap_or(MAX_SEQ_LEN)
        .min(MAX_SEQ_LEN)
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
    /// With [`Requantize::Q8_0`] and a `derived_dir`, the re-quantised weights are written once to
    /// `derived_dir/<fingerprint>.<variant>.gguf` (atomically) and loaded from there afterwards.
    pub fn load(
        path: &Path,
        requantize: Requantize,
        derived: Option<(&Path, &str)>,
    ) -> Result<Self> {
        let (ct, mut reader) = read_header(path)?;
        supported_architecture(&ct, path)?;
        let device = Device::Cpu;
        let context = context_length(&ct);
        let vocab = ct
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.len())
            .unwrap_or(0);
        let needs_requant = requantize == Requantize::Q8_0
            && ct
                .tensor_infos
                .values()
                .any(|t| t.ggml_dtype == GgmlDType::Q4_1);
        let weights = if !needs_requant {
            ModelWeights::from_gguf(ct, &mut reader, &device).map_err(load_err(path))?
        } else {
            let derived_path: Option<PathBuf> =
                derived.map(|(dir, fp)| dir.join(format!("{fp}.{}.gguf", requantize.name())));
            match derived_path.as_deref().map(read_header) {
                Some(Ok((ct2, mut r2))) => match ModelWeights::from_gguf(ct2, &mut r2, &device) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!("derived weights unreadable ({e}); rebuilding");
                        build_requantized(path, &ct, &mut reader, &device, derived_path.as_deref())?
                    }
                },
                _ => build_requantized(path, &ct, &mut reader, &device, derived_path.as_deref())?,
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

fn build_requantized(
    path: &Path,
    ct: &Content,
    reader: &mut GgufReader,
    device: &Device,
    save_to: Option<&Path>,
) -> Result<ModelWeights> {
    let bytes = requantized_gguf(ct, reader, device).map_err(load_err(path))?;
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

/// A GGUF image, in memory, with every Q4_1 tensor re-quantised to Q8_0.
fn requantized_gguf<R: Read + Seek>(
    ct: &Content,
    file: &mut R,
    device: &Device,
) -> candle_core::Result<Vec<u8>> {
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let t = ct.tensor(file, name, device)?;
        let t = if t.dtype() == GgmlDType::Q4_1 {
            QTensor::quantize(&t.dequantize(device)?, GgmlDType::Q8_0)?
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

//! Our own llama forward pass on the real default model: agrees with candle's reference
//! implementation, and is bit-identical across batch composition, thread count and kernels.

use std::sync::{Arc, OnceLock};

use steadytext_core::llama::{CandleLlama, Kernels};
use steadytext_core::model::LanguageModel;
use steadytext_core::quant::Isa;
use steadytext_core::transformer::{KvCache, NativeModel, SeqStep, Weights};
use steadytext_core::{resolve_model, GgufTokenizer};

fn model_path() -> std::path::PathBuf {
    resolve_model(None).expect("the default model (run scripts/fetch-model)")
}

fn weights() -> Arc<Weights> {
    static W: OnceLock<Arc<Weights>> = OnceLock::new();
    W.get_or_init(|| Arc::new(Weights::load(&model_path()).expect("loads")))
        .clone()
}

fn tokens(text: &str) -> Vec<u32> {
    let (ct, _) = steadytext_core::llama::read_header(&model_path()).unwrap();
    GgufTokenizer::from_gguf(&ct).unwrap().encode(text).unwrap()
}

fn argmax(v: &[f32]) -> usize {
    steadytext_core::decode::argmax(v) as usize
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const PROMPT: &str = "<|im_start|>user\nSummarize this customer review in one sentence: The \
    blender is powerful but very loud, and the lid cracked after two weeks.<|im_end|>\n\
    <|im_start|>assistant\n";

#[test]
fn default_model_needs_no_lossy_conversion() {
    assert!(
        weights().requantized().is_empty(),
        "{:?}",
        weights().requantized()
    );
}

/// Largest |difference| of two logit vectors, relative to the largest |logit| of `exact`.
fn rel_diff(exact: &[f32], other: &[f32]) -> f32 {
    let spread = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = exact
        .iter()
        .zip(other)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / spread
}

#[test]
fn as_close_to_the_exact_weights_as_candles_own_quantised_path() {
    // Reference: candle with every weight dequantised to f32 (the exact weights, f32
    // activations). Compared: our kernels (8-bit activations) and candle's Q4_1 path (also 8-bit
    // activations), both teacher-forced along the reference's greedy tokens.
    let ids = tokens(PROMPT);
    let path = model_path();
    let mut exact = CandleLlama::load(&path, Kernels::CandleF32, None).unwrap();
    let mut candle = CandleLlama::load(&path, Kernels::Candle, None).unwrap();
    let mut ours = NativeModel::new(weights());
    let mut e = exact.forward(&ids, 0).unwrap();
    let mut c = candle.forward(&ids, 0).unwrap();
    let mut o = ours.forward(&ids, 0).unwrap();
    let (mut ours_worst, mut candle_worst, mut ours_top1, mut candle_top1) = (0f32, 0f32, 0, 0);
    let steps = 24;
    for step in 0..steps {
        ours_worst = ours_worst.max(rel_diff(&e, &o));
        candle_worst = candle_worst.max(rel_diff(&e, &c));
        let next = argmax(&e);
        ours_top1 += usize::from(argmax(&o) == next);
        candle_top1 += usize::from(argmax(&c) == next);
        let next = next as u32;
        let pos = ids.len() + step;
        e = exact.forward(&[next], pos).unwrap();
        c = candle.forward(&[next], pos).unwrap();
        o = ours.forward(&[next], pos).unwrap();
    }
    eprintln!(
        "vs exact weights over {steps} steps: ours max rel diff {ours_worst:.4}, top-1 {ours_top1}; \
         candle Q4_1 max rel diff {candle_worst:.4}, top-1 {candle_top1}"
    );
    assert!(
        ours_top1 + 1 >= candle_top1,
        "ours {ours_top1} vs candle {candle_top1}"
    );
    assert!(
        ours_top1 >= steps - 3,
        "ours agreed on {ours_top1} of {steps}"
    );
    assert!(
        ours_worst < 0.1,
        "ours max relative difference {ours_worst}"
    );
}

#[test]
fn batched_steps_are_bit_identical_to_single_runs() {
    let w = weights();
    let prompts = [
        PROMPT.to_string(),
        "Classify the sentiment: great product!".to_string(),
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n".to_string(),
    ];
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| tokens(p)).collect();
    // Alone: prefill, then 3 single-token steps.
    let alone: Vec<Vec<Vec<u32>>> = ids
        .iter()
        .map(|p| {
            let mut m = NativeModel::new(w.clone());
            let mut out = vec![bits(&m.forward(p, 0).unwrap())];
            for k in 0..3 {
                out.push(bits(&m.forward(&[100 + k], p.len() + k as usize).unwrap()));
            }
            out
        })
        .collect();
    // Together: one batched prefill of all three, then batched single-token steps, in a
    // different order and with 1 thread and 3 threads.
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut caches: Vec<KvCache> = (0..3).map(|_| KvCache::default()).collect();
            let order = [2usize, 0, 1];
            let mut together: Vec<Vec<Vec<u32>>> = vec![Vec::new(); 3];
            {
                let mut steps: Vec<SeqStep<'_>> = Vec::new();
                let mut rest: Vec<Option<&mut KvCache>> = caches.iter_mut().map(Some).collect();
                for &i in &order {
                    steps.push(SeqStep {
                        kv: rest[i].take().unwrap(),
                        tokens: &ids[i],
                        logits: true,
                        rows: None,
                    });
                }
                for (&i, l) in order.iter().zip(w.forward(&mut steps).unwrap()) {
                    together[i].push(bits(&l));
                }
            }
            for k in 0..3u32 {
                let toks = [100 + k];
                let mut steps: Vec<SeqStep<'_>> = caches
                    .iter_mut()
                    .map(|kv| SeqStep {
                        kv,
                        tokens: &toks,
                        logits: true,
                        rows: None,
                    })
                    .collect();
                for (i, l) in w.forward(&mut steps).unwrap().into_iter().enumerate() {
                    together[i].push(bits(&l));
                }
            }
            assert_eq!(together, alone, "threads = {threads}");
        });
    }
}

#[test]
fn every_kernel_instruction_set_gives_the_same_logits() {
    let ids = tokens("Hello there, how are you?");
    let base = bits(&NativeModel::new(weights()).forward(&ids, 0).unwrap());
    for isa in Isa::supported() {
        let mut w = Weights::load(&model_path()).unwrap();
        w.set_isa(isa);
        let got = bits(&NativeModel::new(Arc::new(w)).forward(&ids, 0).unwrap());
        assert!(got == base, "{} differs", isa.name());
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let w = weights();
    let mut m = NativeModel::new(w.clone());
    assert!(m.forward(&[], 0).is_err());
    assert!(m.forward(&[u32::MAX], 0).is_err());
    assert!(m.forward(&[1, 2], 5).is_err());
    let too_long = vec![1u32; w.context() + 1];
    assert!(matches!(
        m.forward(&too_long, 0),
        Err(steadytext_core::Error::ContextOverflow { .. })
    ));
}

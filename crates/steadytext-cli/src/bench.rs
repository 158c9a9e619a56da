//! `steadytext bench`: the inference core's speed on this machine, measured the same way every
//! time (medians over several runs, result and prefix caches bypassed for model timings).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use steadytext_core::cache::{DiskStore, MemoryStore};
use steadytext_core::decode::argmax;
use steadytext_core::transformer::{KvCache, SeqStep};
use steadytext_core::{
    Backend, Cache, Engine, GenerateOptions, Kernels, LocalBackend, LocalOptions,
};

use crate::Cli;

/// Options of `steadytext bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print one JSON object as the last line (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Runs per measurement (the median is reported), 1 to 65536.
    #[arg(long, default_value_t = 5, value_parser = crate::numbers::bench_count)]
    pub runs: usize,
    /// Which implementation runs the model.
    #[arg(long, value_enum, default_value_t = KernelsArg::Native)]
    pub kernels: KernelsArg,
    /// Threads for the kernels, 1 to 1024 (default: $RAYON_NUM_THREADS, else every core).
    #[arg(long, value_parser = crate::numbers::threads)]
    pub threads: Option<usize>,
    /// Prompt tokens of the prefill measurement, 1 to 65536.
    #[arg(long, default_value_t = 64, value_parser = crate::numbers::bench_count)]
    pub prompt_tokens: usize,
    /// Tokens decoded per decode measurement, 1 to 65536.
    #[arg(long, default_value_t = 128, value_parser = crate::numbers::bench_count)]
    pub decode_tokens: usize,
    /// Concurrent sequences of the batched-decode measurement, 1 to 65536.
    #[arg(long, default_value_t = 8, value_parser = crate::numbers::bench_count)]
    pub batch: usize,
}

/// `--kernels` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KernelsArg {
    /// Our own forward pass and SIMD kernels.
    Native,
    /// candle's quantized llama on the file's formats.
    Candle,
    /// candle with Q4_1 re-quantised to Q8_0.
    CandleQ80,
}

impl From<KernelsArg> for Kernels {
    fn from(k: KernelsArg) -> Self {
        match k {
            KernelsArg::Native => Kernels::Native,
            KernelsArg::Candle => Kernels::Candle,
            KernelsArg::CandleQ80 => Kernels::CandleQ8_0,
        }
    }
}

/// One bench run's results.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    model: String,
    kernels: String,
    isa: String,
    threads: usize,
    runs: usize,
    prompt_tokens: usize,
    decode_tokens: usize,
    load_ms: f64,
    prefill_ms: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    batch: usize,
    /// Aggregate tokens per second of `batch` sequences decoding together (native only).
    batch8_decode_tok_s: Option<f64>,
    /// `batch8_decode_tok_s / decode_tok_s`.
    batch_speedup: Option<f64>,
    choice5_ms: f64,
    cache_hit_memory_us: f64,
    cache_hit_disk_us: f64,
    peak_rss_mb: f64,
}

const TEXT: &str = "I ordered the stainless steel blender after reading the reviews, and my \
    feelings are mixed. The motor is genuinely powerful: it crushes ice in seconds and makes \
    smooth soups. But it is extremely loud, the lid started to crack after two weeks of daily \
    use, and customer support took nine days to answer my email about a replacement part. \
    Shipping was fast and the packaging was good. For the price I expected better build \
    quality, and I would like a longer warranty. Would I buy it again? Probably not, unless the \
    company fixes the lid and answers faster.";

const LABELS: [&str; 5] = [
    "very_positive",
    "positive",
    "neutral",
    "negative",
    "very_negative",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Peak resident set size of this process (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `n` token ids of the bench text (repeated as needed), starting `offset` tokens in.
fn prompt_ids(backend: &LocalBackend, n: usize, offset: usize) -> Result<Vec<u32>> {
    let ids = backend.tokenizer()?.encode(TEXT)?;
    Ok(ids.iter().cycle().skip(offset).take(n).copied().collect())
}

/// Run `bench`.
pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<()> {
    if args.runs == 0 || args.prompt_tokens == 0 || args.decode_tokens == 0 || args.batch == 0 {
        bail!("--runs, --prompt-tokens, --decode-tokens and --batch must be at least 1");
    }
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("setting the kernel thread count")?;
    }
    let path = steadytext_core::resolve_model(cli.model.as_deref())?;
    let kernels: Kernels = args.kernels.into();
    let options = LocalOptions {
        kernels,
        artefact_dir: Some(steadytext_core::model_dir()),
        lazy: false,
        // Model timings must not reuse prompt prefixes.
        prefix_cache_tokens: 0,
        ..Default::default()
    };

    let mut load = Vec::new();
    let mut backend = None;
    for _ in 0..args.runs.max(3) {
        drop(backend.take());
        let start = Instant::now();
        backend = Some(LocalBackend::load(&path, &options)?);
        load.push(ms(start.elapsed()));
    }
    let backend = Arc::new(backend.expect("loaded at least once"));
    let threads = rayon::current_num_threads();
    let isa = steadytext_core::quant::Isa::detect().name().to_string();

    // Prefill and decode of one sequence.
    let ids = prompt_ids(&backend, args.prompt_tokens, 0)?;
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    let (n_prompt, n_decode) = (args.prompt_tokens, args.decode_tokens);
    backend.with_model(|m| {
        for _ in 0..args.runs {
            let start = Instant::now();
            let mut logits = m.forward(&ids, 0)?;
            prefill.push(ms(start.elapsed()));
            let start = Instant::now();
            for pos in n_prompt..n_prompt + n_decode {
                logits = m.forward(&[argmax(&logits)], pos)?;
            }
            decode.push(n_decode as f64 / start.elapsed().as_secs_f64());
        }
        Ok(())
    })?;
    let prefill_ms = median(prefill);
    let decode_tok_s = median(decode);

    // Batched decode: `batch` sequences with different prompts step together.
    let batch_tok_s = match backend.native_weights()? {
        Some(weights) => {
            let prompts: Vec<Vec<u32>> = (0..args.batch)
                .map(|i| prompt_ids(&backend, n_prompt, 7 * i))
                .collect::<Result<_>>()?;
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                let mut caches: Vec<KvCache> =
                    (0..args.batch).map(|_| KvCache::default()).collect();
                let mut next: Vec<[u32; 1]> = Vec::new();
                for (kv, p) in caches.iter_mut().zip(&prompts) {
                    let mut step = [SeqStep {
                        kv,
                        tokens: p,
                        logits: true,
                        rows: None,
                    }];
                    let l = weights.forward(&mut step)?;
                    next.push([argmax(&l[0])]);
                }
                let start = Instant::now();
                for _ in 0..n_decode {
                    let mut steps: Vec<SeqStep<'_>> = caches
                        .iter_mut()
                        .zip(&next)
                        .map(|(kv, t)| SeqStep {
                            kv,
                            tokens: t,
                            logits: true,
                            rows: None,
                        })
                        .collect();
                    let logits = weights.forward(&mut steps)?;
                    drop(steps);
                    for (n, l) in next.iter_mut().zip(&logits) {
                        *n = [argmax(l)];
                    }
                }
                runs.push((args.batch * n_decode) as f64 / start.elapsed().as_secs_f64());
            }
            Some(median(runs))
        }
        None => None,
    };

    // choice over the seed's five sentiment labels, no result cache.
    let engine = Engine::new(backend.clone() as Arc<dyn Backend>, Cache::disabled());
    let prompt = format!("Classify the sentiment of this review (rating 2/5): {TEXT}");
    let opts = GenerateOptions::default();
    let mut choice = Vec::new();
    for _ in 0..args.runs {
        let start = Instant::now();
        engine.choice(&prompt, &LABELS, &opts).await?;
        choice.push(ms(start.elapsed()));
    }

    // Cache hits: memory tier, and disk tier alone (a fresh process would see the latter).
    let dir = std::env::temp_dir().join(format!("steadytext-bench-{}", std::process::id()));
    let short = GenerateOptions::default().max_tokens(8);
    let memory = Engine::new(
        backend.clone() as Arc<dyn Backend>,
        Cache::new(vec![Arc::new(MemoryStore::new(1 << 20))]),
    );
    let disk = Engine::new(
        backend.clone() as Arc<dyn Backend>,
        Cache::new(vec![Arc::new(DiskStore::new(&dir))]),
    );
    memory.generate(TEXT, &short).await?;
    disk.generate(TEXT, &short).await?;
    let (mut hit_mem, mut hit_disk) = (Vec::new(), Vec::new());
    for _ in 0..args.runs.max(20) {
        let start = Instant::now();
        let g = memory.generate(TEXT, &short).await?;
        hit_mem.push(start.elapsed().as_secs_f64() * 1e6);
        let start = Instant::now();
        let h = disk.generate(TEXT, &short).await?;
        hit_disk.push(start.elapsed().as_secs_f64() * 1e6);
        if !(g.cached && h.cached) {
            bail!("expected cache hits");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let batch8 = batch_tok_s;
    let report = BenchReport {
        model: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernels: kernels.name().to_string(),
        isa: if kernels == Kernels::Native {
            isa
        } else {
            "candle".into()
        },
        threads,
        runs: args.runs,
        prompt_tokens: n_prompt,
        decode_tokens: n_decode,
        load_ms: median(load),
        prefill_ms,
        prefill_tok_s: n_prompt as f64 / prefill_ms * 1e3,
        decode_tok_s,
        batch: args.batch,
        batch8_decode_tok_s: batch8,
        batch_speedup: batch8.map(|b| b / decode_tok_s),
        choice5_ms: median(choice),
        cache_hit_memory_us: median(hit_mem),
        cache_hit_disk_us: median(hit_disk),
        peak_rss_mb: peak_rss_mb(),
    };
    print_table(&report, args.json);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn print_table(r: &BenchReport, to_stderr: bool) {
    let rows = [
        ("model", r.model.clone()),
        ("kernels", format!("{} ({})", r.kernels, r.isa)),
        ("threads", r.threads.to_string()),
        ("load", format!("{:.0} ms", r.load_ms)),
        (
            "prefill",
            format!(
                "{:.1} tok/s ({} tokens in {:.1} ms)",
                r.prefill_tok_s, r.prompt_tokens, r.prefill_ms
            ),
        ),
        (
            "decode",
            format!("{:.1} tok/s ({} tokens)", r.decode_tok_s, r.decode_tokens),
        ),
        (
            "batched decode",
            match (r.batch8_decode_tok_s, r.batch_speedup) {
                (Some(b), Some(x)) => {
                    format!("{b:.1} tok/s aggregate, {} sequences ({x:.2}x)", r.batch)
                }
                _ => "n/a (native kernels only)".into(),
            },
        ),
        ("choice of 5 labels", format!("{:.1} ms", r.choice5_ms)),
        (
            "cache hit, memory",
            format!("{:.1} µs", r.cache_hit_memory_us),
        ),
        ("cache hit, disk", format!("{:.1} µs", r.cache_hit_disk_us)),
        ("peak RSS", format!("{:.0} MB", r.peak_rss_mb)),
    ];
    let mut out = format!("steadytext bench (medians of {} runs)\n", r.runs);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<20} {v}\n"));
    }
    if to_stderr {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
}

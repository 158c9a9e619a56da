//! `Engine::generate` on the real default model.

mod common;

use steadytext_core::{Error, FinishReason, GenerateOptions, Kernels};

const REVIEW: &str = "Summarize this customer review in one sentence: The product works as advertised \
but the shipping took forever and the packaging was damaged. The product itself is okay for the price.";

#[tokio::test]
async fn same_input_same_output() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(40);
    let a = engine.generate(REVIEW, &opts).await.unwrap();
    let b = engine.generate(REVIEW, &opts).await.unwrap();
    assert_eq!(a, b);
    assert!(!a.cached);
    assert!(a.completion_tokens > 3, "the model says something: {a:?}");
    assert!(
        a.text.to_lowercase().contains("ship") || a.text.to_lowercase().contains("product"),
        "coherent summary expected, got {:?}",
        a.text
    );
}

#[tokio::test]
async fn max_tokens_bounds_the_output_and_is_a_greedy_prefix() {
    let engine = common::uncached();
    let long = engine
        .generate(
            "Write a short story about a lighthouse keeper.",
            &GenerateOptions::default().max_tokens(40),
        )
        .await
        .unwrap();
    let short = engine
        .generate(
            "Write a short story about a lighthouse keeper.",
            &GenerateOptions::default().max_tokens(12),
        )
        .await
        .unwrap();
    assert_eq!(short.completion_tokens, 12);
    assert_eq!(short.finish_reason, FinishReason::Length);
    assert!(long.completion_tokens > 12);
    assert_ne!(short.text, long.text);
    assert!(long.text.starts_with(&short.text), "{short:?} / {long:?}");
}

#[tokio::test]
async fn stop_strings_cut_the_output_before_them() {
    let engine = common::uncached();
    let prompt = "List five fruits, one per line.";
    let full = engine
        .generate(prompt, &GenerateOptions::default().max_tokens(40))
        .await
        .unwrap();
    // Stop at the second word of the full output: the result is everything before it.
    let word = full
        .text
        .split_whitespace()
        .nth(1)
        .expect("at least two words")
        .to_string();
    let at = full.text.find(&word).unwrap();
    let cut = engine
        .generate(
            prompt,
            &GenerateOptions::default()
                .max_tokens(40)
                .stop([word.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(cut.text, full.text[..at], "stop {word:?}");
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert!(cut.completion_tokens < full.completion_tokens);
}

#[tokio::test]
async fn raw_prompts_skip_the_chat_template() {
    let engine = common::uncached();
    let chat = engine
        .generate(
            "The capital of France is",
            &GenerateOptions::default().max_tokens(8),
        )
        .await
        .unwrap();
    let raw = engine
        .generate(
            "The capital of France is",
            &GenerateOptions::default().max_tokens(8).chat(false),
        )
        .await
        .unwrap();
    assert!(raw.prompt_tokens < chat.prompt_tokens, "{raw:?} {chat:?}");
    assert!(raw.text.contains("Paris"), "{raw:?}");
}

#[tokio::test]
async fn a_repeated_call_is_a_cache_hit_with_identical_text() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::cached(dir.path());
    let opts = GenerateOptions::default().max_tokens(24);
    let first = engine.generate(REVIEW, &opts).await.unwrap();
    let second = engine.generate(REVIEW, &opts).await.unwrap();
    assert!(!first.cached && second.cached);
    assert_eq!(first.text, second.text);
    assert_eq!(first.completion_tokens, second.completion_tokens);

    // A fresh engine (new memory tier) over the same directory hits the disk tier.
    let other = common::cached(dir.path());
    let third = other.generate(REVIEW, &opts).await.unwrap();
    assert!(third.cached);
    assert_eq!(third.text, first.text);

    // Every option that changes output is in the key: a different seed or max_tokens misses.
    let seeded = engine
        .generate(REVIEW, &opts.clone().seed(7))
        .await
        .unwrap();
    assert!(!seeded.cached);
    assert_eq!(seeded.text, first.text, "greedy decoding ignores the seed");
    let shorter = engine
        .generate(REVIEW, &opts.clone().max_tokens(5))
        .await
        .unwrap();
    assert!(!shorter.cached);
    // Bypassing the cache computes again.
    assert!(
        !engine
            .generate(REVIEW, &opts.clone().use_cache(false))
            .await
            .unwrap()
            .cached
    );
}

#[tokio::test]
async fn concurrent_identical_requests_compute_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::cached(dir.path());
    let opts = GenerateOptions::default().max_tokens(16);
    let g = || engine.generate("Name a colour.", &opts);
    let (a, b, c, d) = tokio::join!(g(), g(), g(), g());
    let results = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(results.iter().filter(|g| !g.cached).count(), 1);
    assert!(results.iter().all(|g| g.text == results[0].text));
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(8);
    assert!(matches!(
        engine.generate("", &opts).await,
        Err(Error::EmptyPrompt)
    ));
    assert!(matches!(
        engine.generate(" \n\t", &opts).await,
        Err(Error::EmptyPrompt)
    ));
    assert!(matches!(
        engine.generate("hi", &opts.clone().max_tokens(0)).await,
        Err(Error::InvalidMaxTokens {
            max_tokens: 0,
            context: 4096
        })
    ));
    assert!(matches!(
        engine.generate("hi", &opts.clone().max_tokens(5000)).await,
        Err(Error::InvalidMaxTokens {
            max_tokens: 5000,
            ..
        })
    ));
    let long = "word ".repeat(5000);
    match engine.generate(&long, &opts).await {
        Err(Error::ContextOverflow {
            prompt_tokens,
            max_tokens: 8,
            context: 4096,
        }) => assert!(prompt_tokens > 4096, "{prompt_tokens}"),
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
    // Fits alone, but not with the requested output.
    let near = "word ".repeat(4000);
    assert!(matches!(
        engine
            .generate(&near, &opts.clone().max_tokens(200).chat(false))
            .await,
        Err(Error::ContextOverflow {
            max_tokens: 200,
            ..
        })
    ));
}

#[test]
fn missing_and_invalid_model_files_are_typed_errors() {
    let err = steadytext_core::Engine::builder()
        .model_path("/nonexistent/model.gguf")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::ModelNotFound { tried, .. } if tried == &[std::path::PathBuf::from("/nonexistent/model.gguf")])
    );
    assert!(err.to_string().contains("/nonexistent/model.gguf"));

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a gguf file").unwrap();
    let err = steadytext_core::Engine::builder()
        .model_path(&junk)
        .cache_dir(dir.path())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::ModelLoad { ref path, .. } if path == &junk),
        "{err}"
    );
}

#[test]
fn unsupported_architectures_are_named() {
    use candle_core::quantized::gguf_file::{write, Value};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt2.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    let arch = Value::String("gpt2".into());
    write(&mut f, &[("general.architecture", &arch)], &[]).unwrap();
    drop(f);
    let err = steadytext_core::Engine::builder()
        .model_path(&path)
        .cache_dir(dir.path())
        .build()
        .unwrap_err();
    match err {
        Error::UnsupportedArchitecture { architecture, .. } => assert_eq!(architecture, "gpt2"),
        e => panic!("expected UnsupportedArchitecture, got {e}"),
    }
}

#[test]
fn kernel_variants_have_distinct_identities() {
    use steadytext_core::Backend;
    let path = steadytext_core::resolve_model(None).unwrap();
    let native = steadytext_core::LocalBackend::load(
        &path,
        &steadytext_core::LocalOptions {
            kernels: Kernels::Candle,
            lazy: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(native.identity(), common::backend().identity());
    assert_eq!(native.fingerprint(), common::backend().fingerprint());
}

#[test]
fn prefix_reuse_never_changes_the_output() {
    use std::sync::Arc;
    use steadytext_core::{Backend, Cache, Engine, LocalBackend, LocalOptions};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let path = steadytext_core::resolve_model(None).unwrap();
    let load = |prefix_cache_tokens| {
        Arc::new(
            LocalBackend::load(
                &path,
                &LocalOptions {
                    artefact_dir: Some(steadytext_core::model_dir()),
                    prefix_cache_tokens,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    };
    let (cold, warm) = (load(0), load(4096));
    let shared = "You label customer reviews. Examples:\n".to_string()
        + &"Review: 'Great value, fast delivery.' Label: positive\nReview: 'Broke in a day.' Label: negative\n".repeat(4);
    let prompts = [
        format!("{shared}Review: 'It works, nothing special.' Label:"),
        format!("{shared}Review: 'Terrible support, never again.' Label:"),
        format!("{shared}Review: 'Absolutely love it!' Label:"),
    ];
    let opts = GenerateOptions::default().max_tokens(6);
    let labels = ["positive", "neutral", "negative"];
    let cold_engine = Engine::new(cold.clone() as Arc<dyn Backend>, Cache::disabled());
    let warm_engine = Engine::new(warm.clone() as Arc<dyn Backend>, Cache::disabled());
    for p in &prompts {
        let a = rt.block_on(cold_engine.generate(p, &opts)).unwrap();
        let b = rt.block_on(warm_engine.generate(p, &opts)).unwrap();
        assert_eq!(a, b);
        let ca = rt.block_on(cold_engine.choice(p, &labels, &opts)).unwrap();
        let cb = rt.block_on(warm_engine.choice(p, &labels, &opts)).unwrap();
        assert_eq!(ca, cb, "scores are bit-identical with and without reuse");
    }
    let (hits, reused) = warm.prefix_stats().unwrap();
    assert!(
        hits >= 5 && reused >= 5 * 64,
        "prefix reuse happened: {hits} hits, {reused} tokens"
    );
    assert_eq!(cold.prefix_stats().unwrap(), (0, 0));
}

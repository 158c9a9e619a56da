//! Continuous batching on the real default model: concurrent requests decode together and each
//! gets exactly what it gets alone.

mod common;

use std::sync::Arc;

use steadytext_core::{Backend, CompletionRequest, Constraint};

fn requests() -> Vec<CompletionRequest> {
    let backend = common::backend();
    let chat = |s: &str| backend.render_chat(s).unwrap();
    let plain = |prompt: String, max_tokens: usize| CompletionRequest {
        prompt,
        max_tokens,
        stop: vec![],
        seed: 42,
        constraint: None,
        repeat_penalty: 1.0,
    };
    let mut v = vec![
        plain(chat("Summarize: the blender is loud but strong."), 24),
        plain(chat("Write a haiku about the sea."), 30),
        plain("The capital of France is".into(), 8),
        plain(chat("List three fruits."), 40),
        plain(chat(&"Explain churn in one sentence. ".repeat(30)), 20),
        CompletionRequest {
            stop: vec![".".into()],
            ..plain(chat("Describe a good support ticket reply."), 40)
        },
        CompletionRequest {
            constraint: Some(Constraint::Regex("(yes|no), [a-z]+".into())),
            ..plain(chat("Is the sky blue? Answer yes or no and one word."), 12)
        },
        CompletionRequest {
            constraint: Some(Constraint::JsonSchema(serde_json::json!({
                "type": "object",
                "properties": {"urgency": {"enum": ["low", "high"]}, "ok": {"type": "boolean"}},
                "required": ["urgency", "ok"],
                "additionalProperties": false
            }))),
            repeat_penalty: 1.1,
            ..plain(chat("My order is late and I am angry. Triage as JSON."), 40)
        },
    ];
    // Two identical requests in flight at once must not disturb each other either.
    v.push(v[0].clone());
    v
}

#[test]
fn concurrent_requests_decode_exactly_as_alone() {
    let backend = common::backend();
    // Alone: the single-request path, one after another.
    let alone: Vec<_> = requests()
        .iter()
        .map(|r| backend.complete_blocking(r).unwrap())
        .collect();
    // Together: all submitted at once to the batching scheduler.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let together: Vec<_> = rt.block_on(async {
        let handles: Vec<_> = requests()
            .into_iter()
            .map(|r| {
                let b: Arc<dyn Backend> = backend.clone();
                tokio::spawn(async move { b.complete(r).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap().unwrap());
        }
        out
    });
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a, t, "request {i}");
    }
    assert!(together[6].text.starts_with("yes") || together[6].text.starts_with("no"));
    let v: serde_json::Value = serde_json::from_str(&together[7].text).unwrap();
    assert!(v["ok"].is_boolean(), "{v}");
}

#[test]
fn a_dropped_request_does_not_disturb_the_others() {
    let backend = common::backend();
    let reqs = requests();
    let want = backend.complete_blocking(&reqs[1]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let b: Arc<dyn Backend> = backend.clone();
        let r0 = reqs[3].clone();
        // Give up on one request early; the other must still complete unchanged.
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(50), async move {
            b.complete(r0).await
        });
        let b: Arc<dyn Backend> = backend.clone();
        let kept = b.complete(reqs[1].clone());
        let (_, kept) = tokio::join!(dropped, kept);
        kept.unwrap()
    });
    assert_eq!(got, want);
}

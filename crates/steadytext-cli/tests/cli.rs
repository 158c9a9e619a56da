//! The `steadytext` binary on the real model, one process at a time (two multi-threaded model
//! processes on a 2-core machine would starve each other).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A prompt the default model answers at length (more than 40 tokens), so `--max-tokens` cuts it.
const PROMPT: &str = "Write a short paragraph about why customers value fast shipping.";

fn steadytext(cache: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steadytext"));
    cmd.args(args)
        .env("STEADYTEXT_CACHE_DIR", cache)
        .env_remove("STEADYTEXT_MODEL")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run steadytext");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "steadytext failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn output_is_identical_across_processes_and_thread_counts() {
    let cache = tempfile::tempdir().unwrap();
    let args = ["generate", PROMPT, "--max-tokens", "40", "--no-cache"];
    let one = stdout(&steadytext(
        cache.path(),
        &args,
        &[("RAYON_NUM_THREADS", "1"), ("CANDLE_NUM_THREADS", "1")],
        None,
    ));
    let two = stdout(&steadytext(
        cache.path(),
        &args,
        &[("RAYON_NUM_THREADS", "2"), ("CANDLE_NUM_THREADS", "2")],
        None,
    ));
    let again = stdout(&steadytext(cache.path(), &args, &[], None));
    assert!(one.trim().len() > 10, "coherent text expected: {one:?}");
    assert_eq!(one, two);
    assert_eq!(one, again);

    let short = stdout(&steadytext(
        cache.path(),
        &["generate", PROMPT, "--max-tokens", "12", "--no-cache"],
        &[],
        None,
    ));
    assert_ne!(short, one);
    assert!(
        one.starts_with(short.trim_end()),
        "{short:?} is the greedy prefix of {one:?}"
    );
}

#[test]
fn a_second_call_is_a_cache_hit_in_cache_stats() {
    let cache = tempfile::tempdir().unwrap();
    let args = ["generate", PROMPT, "--max-tokens", "12", "--json"];
    let first: serde_json::Value =
        serde_json::from_str(&stdout(&steadytext(cache.path(), &args, &[], None))).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&stdout(&steadytext(cache.path(), &args, &[], None))).unwrap();
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], true);
    assert_eq!(first["text"], second["text"]);
    assert_eq!(first["completion_tokens"], 12);
    assert_eq!(first["finish_reason"], "length");

    let stats: serde_json::Value = serde_json::from_str(&stdout(&steadytext(
        cache.path(),
        &["cache", "stats", "--json"],
        &[],
        None,
    )))
    .unwrap();
    assert_eq!(stats["stats"]["hits"], 1, "{stats}");
    assert_eq!(stats["stats"]["misses"], 1, "{stats}");
    assert_eq!(stats["stats"]["entries"], 1, "{stats}");

    let path = stdout(&steadytext(cache.path(), &["cache", "path"], &[], None));
    assert_eq!(path.trim(), cache.path().display().to_string());
    stdout(&steadytext(cache.path(), &["cache", "clear"], &[], None));
    let stats: serde_json::Value = serde_json::from_str(&stdout(&steadytext(
        cache.path(),
        &["cache", "stats", "--json"],
        &[],
        None,
    )))
    .unwrap();
    assert_eq!(stats["stats"]["entries"], 0);
}

#[test]
fn prompt_from_stdin() {
    let cache = tempfile::tempdir().unwrap();
    let from_arg = stdout(&steadytext(
        cache.path(),
        &[
            "generate",
            "Name a fruit.",
            "--max-tokens",
            "8",
            "--no-cache",
        ],
        &[],
        None,
    ));
    let from_stdin = stdout(&steadytext(
        cache.path(),
        &["generate", "-", "--max-tokens", "8", "--no-cache"],
        &[],
        Some("Name a fruit."),
    ));
    assert_eq!(from_arg, from_stdin);
}

#[test]
fn missing_model_and_empty_prompt_fail_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let o = steadytext(
        cache.path(),
        &["--model", "/nonexistent/model.gguf", "generate", "hi"],
        &[],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/model.gguf") && err.contains("fetch-model"),
        "{err}"
    );

    let o = steadytext(cache.path(), &["generate", ""], &[], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty prompt"));

    let o = steadytext(
        cache.path(),
        &["generate", "hi", "--max-tokens", "0"],
        &[],
        None,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("max_tokens"));
}

#[test]
fn constrained_commands_hold_and_are_identical_across_thread_counts() {
    let cache = tempfile::tempdir().unwrap();
    let labels = [
        "very_positive",
        "positive",
        "neutral",
        "negative",
        "very_negative",
    ];
    let mut args = vec![
        "choice",
        "Classify sentiment of this review (rating 1/5): Product broke after one week.",
        "--no-cache",
    ];
    for l in &labels {
        args.extend(["--choice", l]);
    }
    let one = stdout(&steadytext(
        cache.path(),
        &args,
        &[("RAYON_NUM_THREADS", "1")],
        None,
    ));
    let two = stdout(&steadytext(
        cache.path(),
        &args,
        &[("RAYON_NUM_THREADS", "2")],
        None,
    ));
    assert_eq!(one, two);
    assert!(labels.contains(&one.trim()), "{one:?}");
    args.push("--json");
    let scored: serde_json::Value =
        serde_json::from_str(&stdout(&steadytext(cache.path(), &args, &[], None))).unwrap();
    assert_eq!(scored["choice"].as_str().unwrap(), one.trim());
    assert_eq!(scored["scores"].as_array().unwrap().len(), 5);

    let schema = r#"{"urgency": {"type": "string", "enum": ["low", "medium", "high", "critical"]}, "root_cause": {"type": "string"}, "follow_up_needed": {"type": "boolean"}}"#;
    let json_args = [
        "json",
        "Analyze support ticket: Subject: Late delivery, Description: My order has not arrived.",
        "--schema",
        schema,
        "--no-cache",
    ];
    let one = stdout(&steadytext(
        cache.path(),
        &json_args,
        &[("RAYON_NUM_THREADS", "1")],
        None,
    ));
    let two = stdout(&steadytext(
        cache.path(),
        &json_args,
        &[("RAYON_NUM_THREADS", "2")],
        None,
    ));
    assert_eq!(one, two);
    let v: serde_json::Value = serde_json::from_str(one.trim()).unwrap();
    assert!(["low", "medium", "high", "critical"].contains(&v["urgency"].as_str().unwrap()));
    assert!(v["follow_up_needed"].is_boolean() && v["root_cause"].is_string());
    assert_eq!(v.as_object().unwrap().len(), 3);

    let schema_file = cache.path().join("schema.json");
    std::fs::write(&schema_file, schema).unwrap();
    let from_file = stdout(&steadytext(
        cache.path(),
        &[
            "json",
            json_args[1],
            "--schema-file",
            schema_file.to_str().unwrap(),
            "--no-cache",
        ],
        &[],
        None,
    ));
    assert_eq!(from_file, one);

    let date = stdout(&steadytext(
        cache.path(),
        &["regex", "Give a date.", "--pattern", r"\d{4}-\d{2}-\d{2}"],
        &[],
        None,
    ));
    assert!(regex_like_date(date.trim()), "{date:?}");
}

fn regex_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[test]
fn bad_constraints_fail_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["choice", "x", "--choice", "a"], "at least 2"),
        (
            &["choice", "x", "--choice", "a", "--choice", "a"],
            "appears twice",
        ),
        (
            &["json", "x", "--schema", "{\"type\": \"strnig\"}"],
            "invalid JSON schema",
        ),
        (
            &["json", "x", "--schema", "not json"],
            "invalid JSON schema",
        ),
        (&["regex", "x", "--pattern", "(unclosed"], "invalid regex"),
        (
            &[
                "json",
                "Describe a ticket.",
                "--schema",
                "{\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"string\"}}",
                "--max-tokens",
                "4",
            ],
            "truncated",
        ),
    ];
    for (args, needle) in cases {
        let o = steadytext(cache.path(), args, &[], None);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

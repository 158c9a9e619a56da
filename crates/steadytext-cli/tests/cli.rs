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
        .env_remove("STEADYTEXT_SENTIMENT_MODEL")
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

/// The exit status (`None` if killed by a signal, as a panic-abort would be).
fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn reviews_analyze_records_bad_lines_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(
        b"{\"id\": 1, \"text\": \"Great product, arrived fast and works perfectly.\", \"rating\": 5}\n",
    );
    // Latin-1, not UTF-8.
    bytes.extend_from_slice(b"{\"id\": 2, \"text\": \"caf\xe9 was cold\"}\n");
    bytes.extend_from_slice(b"{\"id\": 3, \"text\": \n");
    bytes.extend_from_slice(b"{\"id\": 1, \"text\": \"the same id again\"}\n");
    bytes.extend_from_slice(
        b"{\"id\": 4, \"text\": \"Broke after one week, very disappointed.\", \"rating\": 1}\n",
    );
    std::fs::write(&input, &bytes).unwrap();
    let args = [
        "reviews",
        "analyze",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let env = [("RAYON_NUM_THREADS", "1"), ("CANDLE_NUM_THREADS", "1")];
    let o = steadytext(dir.path(), &args, &env, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    // 3: the whole input went through, some lines are recorded as errors.
    assert_eq!(code(&o), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let name = input.display().to_string();
    for needle in [
        format!("{name}:2: not valid UTF-8"),
        format!("{name}:3: not valid JSON"),
        format!("{name}:4: duplicate id, first on line 1"),
    ] {
        assert!(err.contains(&needle), "{needle:?} in {err}");
    }
    assert!(
        err.contains("analysed 2, already done 0, errors 3"),
        "{err}"
    );

    let written = std::fs::read(&output).unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(written.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shape: Vec<(serde_json::Value, Option<serde_json::Value>)> = rows
        .iter()
        .map(|r| (r["id"].clone(), r.get("line").cloned()))
        .collect();
    let j = |v: i64| serde_json::json!(v);
    assert_eq!(
        shape,
        [
            (j(1), None),
            (j(2), Some(j(2))),
            (serde_json::Value::Null, Some(j(3))),
            (j(1), Some(j(4))),
            (j(4), None),
        ],
        "{rows:#?}"
    );
    let labels = [
        "very_positive",
        "positive",
        "neutral",
        "negative",
        "very_negative",
    ];
    for good in [&rows[0], &rows[4]] {
        assert!(good.get("error").is_none());
        assert!(
            labels.contains(&good["sentiment"].as_str().unwrap()),
            "{good}"
        );
        assert!(!good["summary"].as_str().unwrap().is_empty(), "{good}");
    }
    for bad in &rows[1..4] {
        assert!(bad["error"].is_string(), "{bad}");
    }

    // Rerun: results are skipped, errors reported again but not written twice.
    let o = steadytext(dir.path(), &args, &env, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(code(&o), Some(3), "{err}");
    assert!(
        err.contains("analysed 0, already done 2, errors 3"),
        "{err}"
    );
    assert_eq!(std::fs::read(&output).unwrap(), written);

    // A clean input exits 0.
    let clean = dir.path().join("clean.jsonl");
    std::fs::write(
        &clean,
        &bytes[..bytes.iter().position(|&b| b == b'\n').unwrap() + 1],
    )
    .unwrap();
    let o = steadytext(
        dir.path(),
        &[
            "reviews",
            "analyze",
            "--input",
            clean.to_str().unwrap(),
            "--output",
            dir.path().join("clean-out.jsonl").to_str().unwrap(),
        ],
        &env,
        None,
    );
    assert_eq!(code(&o), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn numeric_options_out_of_range_are_usage_errors_not_panics() {
    // Negative values are written `--option=-1`: clap reads a bare `-1` as a flag.
    let cache = tempfile::tempdir().unwrap();
    let db = "postgres://postgres@127.0.0.1:1/none";
    let huge = "18446744073709551615";
    let http = ["--backend", "http", "--base-url", "http://127.0.0.1:1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&http[..], &["--request-timeout", "1e20", "generate", "hi"]].concat(),
            "--request-timeout",
        ),
        (
            [&http[..], &["--request-timeout", "nan", "generate", "hi"]].concat(),
            "--request-timeout",
        ),
        (
            [&http[..], &["--request-timeout", "inf", "generate", "hi"]].concat(),
            "--request-timeout",
        ),
        (
            [&http[..], &["--request-timeout=-1", "generate", "hi"]].concat(),
            "--request-timeout",
        ),
        (
            [&http[..], &["--request-timeout", "0", "generate", "hi"]].concat(),
            "--request-timeout",
        ),
        (
            vec!["worker", "--database-url", db, "--concurrency", huge],
            "--concurrency",
        ),
        (
            vec!["worker", "--database-url", db, "--concurrency", "0"],
            "--concurrency",
        ),
        (
            vec!["worker", "--database-url", db, "--lease", "1e20"],
            "--lease",
        ),
        (
            vec!["worker", "--database-url", db, "--lease", "nan"],
            "--lease",
        ),
        (
            vec!["worker", "--database-url", db, "--poll-interval=-1"],
            "--poll-interval",
        ),
        (
            vec!["worker", "--database-url", db, "--shutdown-grace", "inf"],
            "--shutdown-grace",
        ),
        (
            vec!["worker", "--database-url", db, "--max-attempts", huge],
            "--max-attempts",
        ),
        (
            vec![
                "queue",
                "drain",
                "--database-url",
                db,
                "--concurrency",
                huge,
            ],
            "--concurrency",
        ),
        (vec!["demo", "--concurrency", huge], "--concurrency"),
        (vec!["bench", "--runs", huge], "--runs"),
        (vec!["bench", "--threads", huge], "--threads"),
        (vec!["bench", "--prompt-tokens", huge], "--prompt-tokens"),
        (vec!["bench", "--decode-tokens", "0"], "--decode-tokens"),
        (vec!["bench", "--batch", huge], "--batch"),
        (vec!["generate", "hi", "--max-tokens=-1"], "--max-tokens"),
        (
            vec!["generate", "hi", "--seed", "18446744073709551616"],
            "--seed",
        ),
    ];
    for (args, option) in &cases {
        let o = steadytext(cache.path(), args, &[], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("invalid value") && err.contains(option),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // From the environment too.
    let o = steadytext(
        cache.path(),
        &[&http[..], &["generate", "hi"]].concat(),
        &[("STEADYTEXT_REQUEST_TIMEOUT", "1e20")],
        None,
    );
    assert_eq!(code(&o), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    // In range but beyond what the model takes: a typed error (exit 1), not a panic.
    let o = steadytext(
        cache.path(),
        &["generate", "hi", "--max-tokens", huge],
        &[("RAYON_NUM_THREADS", "1")],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), Some(1), "{err}");
    assert!(
        err.contains("max_tokens") && !err.contains("panicked"),
        "{err}"
    );
}

/// Invented labelled sentences of a domain the built-in calibration was not fitted on.
const LABELS: &str = "\
{\"text\": \"A moving, beautifully acted film that stays with you.\", \"label\": \"positive\"}
{\"text\": \"The funniest comedy I have seen in years.\", \"label\": \"positive\", \"id\": 2}
{\"text\": \"Gorgeous photography and a score to match.\", \"label\": \"positive\"}
{\"text\": \"I loved every minute of this charming little story.\", \"label\": \"positive\"}
{\"text\": \"The film runs for two hours and ten minutes.\", \"label\": \"neutral\"}
{\"text\": \"It opens in theaters across the country on Friday.\", \"label\": \"neutral\"}
{\"text\": \"The story is set in a small town in Ohio in 1952.\", \"label\": \"neutral\"}
{\"text\": \"It is based on a novel published in 1987.\", \"label\": \"neutral\"}
{\"text\": \"A tedious, overlong mess with nothing to say.\", \"label\": \"negative\"}
{\"text\": \"The jokes fall flat and the plot makes no sense.\", \"label\": \"negative\"}
{\"text\": \"Boring, predictable and far too long.\", \"label\": \"negative\", \"rating\": 1}
{\"text\": \"Ugly to look at and painful to sit through.\", \"label\": \"negative\"}
";

#[test]
fn calibrate_writes_a_calibration_that_reviews_analyze_applies_by_identity() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.jsonl");
    let cal = dir.path().join("cal.json");
    std::fs::write(&labels, LABELS).unwrap();
    let env = [("RAYON_NUM_THREADS", "1"), ("CANDLE_NUM_THREADS", "1")];
    let args = [
        "calibrate",
        "sentiment",
        "--labels",
        labels.to_str().unwrap(),
        "--output",
        cal.to_str().unwrap(),
        "--folds",
        "3",
    ];
    let o = steadytext(dir.path(), &args, &env, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    // The comparison: majority, the current calibration and every candidate, one chosen.
    assert!(
        err.contains("12 examples (positive 4, neutral 4, negative 4); 3-fold"),
        "{err}"
    );
    assert!(err.contains("always the majority label"), "{err}");
    assert!(err.contains("current cal-"), "{err}");
    assert_eq!(err.matches("(cv)").count(), 3, "{err}");
    assert_eq!(err.matches("<- chosen").count(), 1, "{err}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(written["provenance"]["examples"], 12);
    let id = err
        .split("wrote ")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .expect("the id is printed")
        .to_string();
    assert!(id.starts_with("cal-"), "{err}");

    // reviews analyze with it: every row names it; without it, the built-in one.
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"text\": \"The cast is wonderful and the ending is perfect.\"}\n",
    )
    .unwrap();
    let run = |out: &Path, cal: Option<&Path>| {
        let mut args = vec![
            "reviews".to_string(),
            "analyze".into(),
            "--input".into(),
            input.display().to_string(),
            "--output".into(),
            out.display().to_string(),
        ];
        if let Some(c) = cal {
            args.extend(["--calibration".into(), c.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = steadytext(dir.path(), &args, &env, None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let row: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(out).unwrap().trim()).unwrap();
        row["calibration"].as_str().unwrap().to_string()
    };
    assert_eq!(run(&dir.path().join("a.jsonl"), Some(&cal)), id);
    let builtin = run(&dir.path().join("b.jsonl"), None);
    assert_ne!(builtin, id);
    assert_eq!(
        builtin,
        steadytext_schema::SentimentModel::default().calibration_id(),
        "the built-in calibration's identity"
    );

    // A bad labels line: its number, exit 1, nothing written.
    std::fs::write(
        &labels,
        format!("{LABELS}{{\"text\": \"x\", \"label\": \"great\"}}\n"),
    )
    .unwrap();
    let cal2 = dir.path().join("cal2.json");
    let o = steadytext(
        dir.path(),
        &[
            "calibrate",
            "sentiment",
            "--labels",
            labels.to_str().unwrap(),
            "--output",
            cal2.to_str().unwrap(),
        ],
        &env,
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), Some(1), "{err}");
    assert!(err.contains("line 13"), "{err}");
    assert!(!cal2.exists());

    // A file that is not a calibration stops reviews analyze before it writes anything.
    std::fs::write(&cal2, "{\"format\": 1}").unwrap();
    let out = dir.path().join("c.jsonl");
    let o = steadytext(
        dir.path(),
        &[
            "reviews",
            "analyze",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--calibration",
            cal2.to_str().unwrap(),
        ],
        &env,
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), Some(1), "{err}");
    assert!(err.contains("not a sentiment calibration"), "{err}");
    assert!(!out.exists());
}

#[test]
fn reviews_analyze_classifies_sentiment_on_the_sentiment_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"text\": \"Broke after one week, support never answered. Very disappointed.\"}\n\
         {\"id\": 2, \"text\": \"Love it: the quality is outstanding and it arrived early.\"}\n",
    )
    .unwrap();
    let gemma_cal = steadytext_schema::SentimentModel::shipped_for(&format!(
        "gguf/gemma3/{}",
        steadytext_schema::sentiment_model::SHIPPED_CALIBRATIONS[1].0
    ))
    .unwrap();
    let run = |extra: &[&str], out: &str| {
        let output = dir.path().join(out);
        let mut args = vec![
            "reviews",
            "analyze",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = steadytext(dir.path(), &args, &[], None);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(code(&o), Some(0), "{err}");
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (rows, err)
    };
    let (split, err) = run(&["--sentiment-model", "gemma3-270m"], "split.jsonl");
    assert!(err.contains(gemma_cal.calibration_id()), "{err}");
    let (alone, _) = run(&[], "alone.jsonl");
    let labels: Vec<&str> = split
        .iter()
        .map(|r| r["sentiment"].as_str().unwrap())
        .collect();
    assert!(
        labels[0].ends_with("negative") && labels[1].ends_with("positive"),
        "{split:?}"
    );
    for (s, a) in split.iter().zip(&alone) {
        assert_eq!(s["calibration"], gemma_cal.calibration_id(), "{s}");
        assert_ne!(s["calibration"], a["calibration"]);
        assert_eq!(s["themes"], a["themes"], "themes come from the main model");
    }

    // A sentiment model that is not there is an error naming it, before any work.
    let o = steadytext(
        dir.path(),
        &[
            "reviews",
            "analyze",
            "--input",
            input.to_str().unwrap(),
            "--output",
            dir.path().join("none.jsonl").to_str().unwrap(),
            "--sentiment-model",
            "/nonexistent/model.gguf",
        ],
        &[],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(code(&o), Some(0));
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
}

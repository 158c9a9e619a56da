//! `steadytext --backend http`: option checks (no server needed), then generate, choice, json
//! and regex against a real llama-server built by `scripts/llama-server build` (skipped with a
//! message when it is not built).

#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn steadytext(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steadytext"))
        .args(args)
        .env("STEADYTEXT_CACHE_DIR", cache)
        .env_remove("STEADYTEXT_BACKEND")
        .env_remove("STEADYTEXT_BASE_URL")
        .env_remove("STEADYTEXT_MODEL_NAME")
        .env_remove("STEADYTEXT_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run steadytext")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "steadytext failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn failed(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[test]
fn backend_options_are_checked_and_nothing_falls_back() {
    let cache = tempfile::tempdir().unwrap();
    let err = failed(&steadytext(
        cache.path(),
        &["--backend", "http", "generate", "hi"],
    ));
    assert!(err.contains("--base-url"), "{err}");
    let err = failed(&steadytext(
        cache.path(),
        &["--base-url", "http://127.0.0.1:9", "generate", "hi"],
    ));
    assert!(err.contains("--backend http"), "{err}");
    // A server that is down: an error naming it, never the local model.
    let url = format!("http://127.0.0.1:{}", free_port());
    let err = failed(&steadytext(
        cache.path(),
        &["--backend", "http", "--base-url", &url, "generate", "hi"],
    ));
    assert!(err.contains(&url) && err.contains("unreachable"), "{err}");
}

/// The binary `scripts/llama-server build` produces, if any.
fn llama_server() -> Option<PathBuf> {
    let root = std::env::var_os("STEADYTEXT_LLAMA_CPP_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/steadytext/llama.cpp"))
        })?;
    let mut builds: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin/llama-server")))
        .filter(|p| p.is_file())
        .collect();
    builds.sort();
    builds.pop()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains(" 200 ")
}

#[test]
fn generate_choice_json_and_regex_through_a_real_llama_server() {
    let Some(bin) = llama_server() else {
        // CI builds the server (.ci/run): there a missing binary is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "llama-server is not built under CI; `scripts/llama-server build` must run first"
        );
        eprintln!("SKIPPED: llama-server is not built; build it with `scripts/llama-server build`");
        return;
    };
    let model = steadytext_core::resolve_model(None).expect("run scripts/fetch-model");
    let port = free_port();
    let mut server = Server(
        Command::new(&bin)
            .arg("-m")
            .arg(&model)
            .args(["-t", "1", "-c", "2048", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while !healthy(port) {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "llama-server exited"
        );
        assert!(Instant::now() < deadline, "llama-server: no /health");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}");
    let cache = tempfile::tempdir().unwrap();
    let http = |args: &[&str]| {
        let mut all = vec!["--backend", "http", "--base-url", &url];
        all.extend_from_slice(args);
        steadytext(cache.path(), &all)
    };

    let g = ok(&http(&[
        "generate",
        "Name three colours.",
        "--max-tokens",
        "24",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    assert_eq!(v["cached"], false);
    let again: serde_json::Value = serde_json::from_str(&ok(&http(&[
        "generate",
        "Name three colours.",
        "--max-tokens",
        "24",
        "--json",
    ])))
    .unwrap();
    assert_eq!(again["text"], v["text"]);
    assert_eq!(again["cached"], true);

    let c = ok(&http(&[
        "choice",
        "Review: broke after a week. Sentiment?",
        "--choice",
        "positive",
        "--choice",
        "negative",
    ]));
    assert!(["positive", "negative"].contains(&c.trim()), "{c}");

    let schema = r#"{"urgency": {"type": "string", "enum": ["low", "high"]}, "follow_up_needed": {"type": "boolean"}}"#;
    let j: serde_json::Value = serde_json::from_str(&ok(&http(&[
        "json",
        "Ticket: the site is down!",
        "--schema",
        schema,
    ])))
    .unwrap();
    assert!(j["urgency"] == "low" || j["urgency"] == "high", "{j}");
    assert!(j["follow_up_needed"].is_boolean(), "{j}");

    let r = ok(&http(&[
        "regex",
        "When was the order placed?",
        "--pattern",
        r"\d{4}-\d{2}-\d{2}",
    ]));
    let r = r.trim();
    assert!(
        r.len() == 10
            && r.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }),
        "{r}"
    );

    let err = failed(&http(&["--model-name", "gpt-4", "generate", "hi"]));
    assert!(err.contains("gpt-4") && err.contains("not served"), "{err}");
}

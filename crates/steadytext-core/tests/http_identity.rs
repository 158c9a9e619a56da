//! The HTTP backend's identity tracks the served weights, against a real llama.cpp
//! `llama-server` (`scripts/llama-server build`) on 127.0.0.1, ports 8190-8199.

#![cfg(feature = "http")]

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use steadytext_core::http::server::WEIGHTS_META_KEY;
use steadytext_core::http::{HttpBackend, HttpConfig};
use steadytext_core::Backend;

/// The llama-server binary (`$STEADYTEXT_LLAMA_SERVER`, else the newest build under the dir
/// `scripts/llama-server` uses). Missing is a failure, not a skip.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STEADYTEXT_LLAMA_SERVER") {
        return PathBuf::from(p);
    }
    let root = std::env::var_os("STEADYTEXT_LLAMA_CPP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_default()
                .join("steadytext/llama.cpp")
        });
    let mut builds: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("bin/llama-server")))
        .filter(|p| p.is_file())
        .collect();
    builds.sort();
    builds.pop().unwrap_or_else(|| {
        panic!(
            "no llama-server under {}: run `scripts/llama-server build`",
            root.display()
        )
    })
}

fn port() -> u16 {
    (8190..=8199)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 8190-8199")
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

/// A llama-server serving `model`, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(model: &Path) -> Server {
        let bin = binary();
        let port = port();
        let child = Command::new(&bin)
            .arg("-m")
            .arg(model)
            .args([
                "-t",
                "1",
                "-c",
                "512",
                "-np",
                "1",
                "--host",
                "127.0.0.1",
                "--port",
            ])
            .arg(port.to_string())
            .env("LD_LIBRARY_PATH", bin.parent().expect("bin dir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server starts");
        let mut server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !healthy(port) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama-server exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "llama-server: no /health in 90 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn identity(config: HttpConfig) -> String {
    HttpBackend::connect(config.api_key(None))
        .await
        .expect("connects to llama-server")
        .identity()
        .to_string()
}

/// The identity without the weights' part: what it was before weights were tracked.
fn without_weights(identity: &str) -> String {
    let start = identity
        .find(&format!(",\"{WEIGHTS_META_KEY}\""))
        .expect(identity);
    let end = identity[start + 1..].find(['}', ',']).unwrap() + start + 1;
    format!("{}{}", &identity[..start], &identity[end..])
}

/// Same file name, same size, same parameter count, one weight changed: a different identity
/// (hence different cache keys); the same weights again: the same identity.
#[tokio::test]
async fn the_identity_changes_when_the_served_weights_change() {
    let original = steadytext_core::resolve_model(None).expect("the default model");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join(original.file_name().unwrap());
    std::fs::copy(&original, &model).unwrap();

    let server = Server::start(&model);
    let first = identity(HttpConfig::new(server.url())).await;
    let hash = steadytext_core::fingerprint::hash_file(&model).unwrap();
    assert!(
        first.contains(&format!("\"{WEIGHTS_META_KEY}\":\"blake3:{hash}\"")),
        "{first}"
    );
    assert!(first.contains("\"n_params\":134515008"), "{first}");
    assert!(
        first.contains("/SmolLM2-135M-Instruct.Q4_1.gguf/"),
        "{first}"
    );
    // A deployment-given weights id takes precedence.
    let named = identity(HttpConfig::new(server.url()).weights_id("release-7")).await;
    assert!(
        named.contains(&format!("\"{WEIGHTS_META_KEY}\":\"id:release-7\"")),
        "{named}"
    );
    drop(server);

    // Change one weight (the last byte of the file is tensor data) in place.
    {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&model)
            .unwrap();
        let mut last = [0u8; 1];
        f.seek(SeekFrom::End(-1)).unwrap();
        f.read_exact(&mut last).unwrap();
        f.seek(SeekFrom::End(-1)).unwrap();
        f.write_all(&[last[0] ^ 0x11]).unwrap();
    }
    let server = Server::start(&model);
    let changed = identity(HttpConfig::new(server.url())).await;
    assert_ne!(first, changed, "the identity must track the weights");
    // Everything else the server reports is the same: only the weights' hash tells them apart.
    assert_eq!(without_weights(&first), without_weights(&changed));
    drop(server);

    // The original weights again: the original identity (cache entries are shared again).
    std::fs::copy(&original, &model).unwrap();
    let server = Server::start(&model);
    assert_eq!(identity(HttpConfig::new(server.url())).await, first);
}

//! `steadytext cache stats` shows the disk tier's bound and eviction count (no model needed).

use std::process::Command;

fn cache_stats(dir: &std::path::Path, env: &[(&str, &str)], json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steadytext"));
    cmd.args(["cache", "stats"])
        .env("STEADYTEXT_CACHE_DIR", dir)
        .env_remove("STEADYTEXT_DISK_CACHE_BYTES");
    if json {
        cmd.arg("--json");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run steadytext");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cache_stats_shows_the_bound_and_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let text = cache_stats(dir.path(), &[], false);
    assert!(
        text.contains("bound:     1073741824 bytes (1.0 GiB"),
        "{text}"
    );
    assert!(text.contains("evictions: 0"), "{text}");

    let json: serde_json::Value = serde_json::from_str(&cache_stats(
        dir.path(),
        &[("STEADYTEXT_DISK_CACHE_BYTES", "12345")],
        true,
    ))
    .unwrap();
    assert_eq!(json["stats"]["max_bytes"], 12345, "{json}");
    assert_eq!(json["stats"]["evictions"], 0, "{json}");
    let text = cache_stats(
        dir.path(),
        &[("STEADYTEXT_DISK_CACHE_BYTES", "12345")],
        false,
    );
    assert!(text.contains("bound:     12345 bytes (12.1 KiB"), "{text}");
}

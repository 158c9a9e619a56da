//! `steadytext cache stats | clear | path`.

use anyhow::Result;
use clap::Subcommand;
use steadytext_core::cache::{CacheStore, DiskStore, DISK_CACHE_BYTES_ENV};

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show the disk tier's counters (totals of every process that used it), size and bound
    /// (default 1 GiB; $STEADYTEXT_DISK_CACHE_BYTES overrides it).
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete every cached result.
    Clear,
    /// Print the cache directory.
    Path,
}

pub async fn run(cli: &Cli, cmd: &CacheCommand) -> Result<()> {
    let builder = cli.engine_builder();
    let dir = builder.resolved_cache_dir();
    let disk = DiskStore::with_max_bytes(&dir, builder.resolved_disk_cache_bytes());
    match cmd {
        CacheCommand::Path => println!("{}", dir.display()),
        CacheCommand::Clear => {
            disk.clear().await?;
            println!("cleared {}", dir.display());
        }
        CacheCommand::Stats { json } => {
            let s = disk.stats().await?;
            if *json {
                println!(
                    "{}",
                    serde_json::json!({ "path": dir, "tier": "disk", "stats": s })
                );
            } else {
                let lookups = s.hits + s.misses;
                let rate = if lookups > 0 {
                    100.0 * s.hits as f64 / lookups as f64
                } else {
                    0.0
                };
                println!("cache dir: {}", dir.display());
                println!("entries:   {} ({} bytes)", s.entries, s.bytes);
                println!(
                    "bound:     {} bytes ({}; ${DISK_CACHE_BYTES_ENV} sets it)",
                    disk.max_bytes(),
                    human_bytes(disk.max_bytes())
                );
                println!("evictions: {}", s.evictions);
                println!("hits:      {}", s.hits);
                println!("misses:    {}", s.misses);
                println!("hit rate:  {rate:.1}%");
                println!("writes:    {}", s.writes);
                println!("corrupt:   {}", s.corrupt);
            }
        }
    }
    Ok(())
}

/// `1073741824` as `1.0 GiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}

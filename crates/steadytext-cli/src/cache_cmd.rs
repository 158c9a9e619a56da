//! `steadytext cache stats | clear | path`.

use anyhow::Result;
use clap::Subcommand;
use steadytext_core::cache::{CacheStore, DiskStore};

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show the disk tier's counters (totals of every process that used it) and size.
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
    let dir = cli.engine_builder().resolved_cache_dir();
    let disk = DiskStore::new(&dir);
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

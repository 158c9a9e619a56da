//! `steadytext generate`.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use clap::Args;
use steadytext_core::{GenerateOptions, DEFAULT_MAX_TOKENS, DEFAULT_SEED};

use crate::Cli;

/// Options shared by every generating command.
#[derive(Debug, Args)]
pub struct CommonGenArgs {
    /// Maximum tokens to generate.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub max_tokens: usize,
    /// Seed (part of the cache key).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Send the prompt as is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Print one JSON object with the result, token counts and cache status.
    #[arg(long)]
    pub json: bool,
}

impl CommonGenArgs {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions::default()
            .max_tokens(self.max_tokens)
            .seed(self.seed)
            .use_cache(!self.no_cache)
            .chat(!self.raw)
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt, or `-` to read it from standard input.
    pub prompt: String,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub common: CommonGenArgs,
}

/// The prompt argument, reading standard input for `-`.
pub fn read_prompt(arg: &str) -> Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the prompt from standard input")?;
        Ok(s)
    } else {
        Ok(arg.to_string())
    }
}

pub async fn run(cli: &Cli, args: &GenerateArgs) -> Result<()> {
    let prompt = read_prompt(&args.prompt)?;
    if prompt.trim().is_empty() {
        return Err(steadytext_core::Error::EmptyPrompt.into());
    }
    let engine = cli.engine_builder().lazy(true).build()?;
    let opts = args.common.options().stop(args.stop.clone());
    let g = engine.generate(&prompt, &opts).await?;
    let mut out = std::io::stdout().lock();
    if args.common.json {
        writeln!(out, "{}", serde_json::to_string(&g)?)?;
    } else {
        writeln!(out, "{}", g.text)?;
    }
    Ok(())
}

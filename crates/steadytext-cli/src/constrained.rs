//! `steadytext choice | json | regex`: constrained generation from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::generate::{read_prompt, CommonGenArgs};
use crate::Cli;

#[derive(Debug, Args)]
pub struct ChoiceArgs {
    /// The prompt, or `-` to read it from standard input.
    pub prompt: String,
    /// An option (repeat for each; at least two).
    #[arg(long = "choice", required = true)]
    pub choices: Vec<String>,
    #[command(flatten)]
    pub common: CommonGenArgs,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// The prompt, or `-` to read it from standard input.
    pub prompt: String,
    /// JSON Schema (or the seed's shorthand: a bare map of property schemas).
    #[arg(
        long,
        conflicts_with = "schema_file",
        required_unless_present = "schema_file"
    )]
    pub schema: Option<String>,
    /// Read the schema from this file.
    #[arg(long)]
    pub schema_file: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonGenArgs,
}

#[derive(Debug, Args)]
pub struct RegexArgs {
    /// The prompt, or `-` to read it from standard input.
    pub prompt: String,
    /// The pattern the whole output must match (Rust regex syntax).
    #[arg(long)]
    pub pattern: String,
    #[command(flatten)]
    pub common: CommonGenArgs,
}

pub async fn choice(cli: &Cli, args: &ChoiceArgs) -> Result<()> {
    let prompt = read_prompt(&args.prompt)?;
    let engine = cli.engine_builder().lazy(true).build()?;
    let c = engine
        .choice(&prompt, &args.choices, &args.common.options())
        .await?;
    let mut out = std::io::stdout().lock();
    if args.common.json {
        writeln!(out, "{}", serde_json::to_string(&c)?)?;
    } else {
        writeln!(out, "{}", c.choice)?;
    }
    Ok(())
}

pub async fn json(cli: &Cli, args: &JsonArgs) -> Result<()> {
    let prompt = read_prompt(&args.prompt)?;
    let text = match (&args.schema, &args.schema_file) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the schema file {}", path.display()))?,
        (None, None) => unreachable!("clap requires one of --schema / --schema-file"),
    };
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| steadytext_core::Error::InvalidSchema(format!("not JSON: {e}")))?;
    let engine = cli.engine_builder().lazy(true).build()?;
    let value = engine
        .generate_json(&prompt, &schema, &args.common.options())
        .await?;
    println!("{value}");
    Ok(())
}

pub async fn regex(cli: &Cli, args: &RegexArgs) -> Result<()> {
    let prompt = read_prompt(&args.prompt)?;
    let engine = cli.engine_builder().lazy(true).build()?;
    let text = engine
        .generate_regex(&prompt, &args.pattern, &args.common.options())
        .await?;
    println!("{text}");
    Ok(())
}

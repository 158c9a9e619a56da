//! `steadytext reviews analyze`: batch review analysis, JSONL in, JSONL out.
//!
//! The input is streamed line by line as bytes (never loaded whole), so one bad line or a huge
//! file does not sink the run. Each line ends up as exactly one of:
//!
//! * **analysed**: a result row `{"id", "sentiment", "sentiment_score", "summary", "themes", "aspects",
//!   "needs_human_review", "human_review_reasons", "prompt_version", "calibration"}` is appended to the output;
//! * **already done**: its id has a result row in the output from an earlier run (resume);
//! * **an error**: reported on stderr as `INPUT:LINE: message` and appended to the output as
//!   `{"line": LINE, "id": ID or null, "error": "message"}`, then the run goes on. Errors are:
//!   not valid UTF-8, longer than [`MAX_LINE_BYTES`], not a JSON object, a missing or mistyped
//!   field, a rating outside 1..=5, an id already seen on an earlier line of the input (the first
//!   line with an id is the one analysed; later duplicates are errors naming it), or an analysis
//!   that failed (tried once per run: no retry loop). Blank lines are ignored.
//!
//! Failures that would hit every line alike (the model file missing or unloadable, the
//! inference server unreachable or not serving the model) stop the run with exit status 1.
//!
//! **Resume.** A rerun with the same output skips ids that have a result row and tries again
//! every line recorded as an error (once per run). An error row identical to one already in the
//! output is not written twice, so rerunning over deterministic bad lines does not grow the
//! file. An id may thus have error rows followed by a result row: the result row is the answer.
//!
//! **Exit status.** 0: every line analysed or already done. 3: the run went through the whole
//! input but at least one line was recorded as an error. 1: the run stopped (unreadable input,
//! unwritable output, an engine-wide failure). 2: bad arguments.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use steadytext_schema::analysis::AnalysisError;
use steadytext_schema::prompts::ReviewInput;
use steadytext_schema::{Analyst, Rating, ReviewAnalysis};

use crate::Cli;

/// Longest input line accepted, in bytes (1 MiB). A review's text is cut to 2000 characters
/// for its prompts anyway; a longer line is recorded as an error and skipped without being held
/// in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Exit status of a run that finished with at least one line recorded as an error.
pub const EXIT_LINE_ERRORS: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum ReviewsCommand {
    /// Analyse reviews: sentiment, one-sentence summary, up to 3 themes.
    ///
    /// Exit status: 0 all lines analysed (or already done), 3 finished but some lines were
    /// recorded as errors (on stderr with their line numbers, and as `{"line", "id", "error"}`
    /// rows in the output), 1 stopped early, 2 bad arguments.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input JSONL: one `{"id", "text", "rating"?}` object per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL (appended to; ids with a result row are skipped, so a rerun resumes, and
    /// lines recorded as errors are tried again).
    #[arg(long)]
    pub output: PathBuf,
    /// Seed (part of every cache key).
    #[arg(long, default_value_t = steadytext_core::DEFAULT_SEED)]
    pub seed: u64,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Sentiment calibration file (`steadytext calibrate sentiment --output CAL`); default:
    /// the built-in one. Each result row names its calibration.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct InputLine {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    rating: Option<i64>,
}

fn id_key(id: &serde_json::Value) -> String {
    id.to_string()
}

/// What an earlier run left in the output.
#[derive(Debug, Default)]
struct Resume {
    /// Ids with a result row.
    done: HashSet<String>,
    /// Error rows, as written (not written again).
    errors: HashSet<String>,
}

/// Read one line of at most `cap` bytes into `buf` (without its `\n` or `\r\n`). `None` at
/// the end of the input; `Some(true)` when the line was longer than `cap`: it is then skipped
/// up to its newline without being kept, and `buf` is empty.
fn read_line_capped<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let n = r.by_ref().take(cap as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(false));
    }
    if buf.len() <= cap {
        return Ok(Some(false)); // the last line, without a newline
    }
    buf.clear();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                break;
            }
            None => {
                let len = avail.len();
                r.consume(len);
            }
        }
    }
    Ok(Some(true))
}

/// Ids with a result row and the error rows already in `output` (a torn last line from a
/// crash is ignored and redone). Streamed like the input.
fn read_resume(output: &Path) -> Result<Resume> {
    let mut resume = Resume::default();
    let f = match File::open(output) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(resume),
        Err(e) => return Err(e).with_context(|| format!("reading {}", output.display())),
    };
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    while let Some(too_long) = read_line_capped(&mut r, &mut buf, MAX_LINE_BYTES)
        .with_context(|| format!("reading {}", output.display()))?
    {
        if too_long {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) else {
            continue;
        };
        if v.get("error").is_some() {
            resume.errors.insert(v.to_string());
        } else if let Some(id) = v.get("id") {
            resume.done.insert(id_key(id));
        }
    }
    Ok(resume)
}

/// Lines in `path` (for the progress bar), by a streaming pass; `None` when it is not a
/// regular file (a pipe can be read only once).
fn count_lines(path: &Path) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut chunk = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = f.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        lines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk[n - 1];
    }
    Some(lines + u64::from(last != b'\n'))
}

/// Failures that would repeat on every line: stop instead of recording each.
fn is_engine_wide(e: &AnalysisError) -> bool {
    use steadytext_core::Error as E;
    matches!(
        e,
        AnalysisError::Model(
            E::ModelNotFound { .. }
                | E::ModelLoad { .. }
                | E::UnsupportedArchitecture { .. }
                | E::ServerUnreachable { .. }
                | E::ModelNotServed { .. }
        )
    )
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    analysed: usize,
    skipped: usize,
    errors: usize,
}

/// The line loop: `input` (named `name` in messages) to `out`, each review through `analyse`.
async fn analyze_stream<R, W, F, Fut>(
    mut input: R,
    name: &str,
    out: &mut W,
    resume: &mut Resume,
    bar: &ProgressBar,
    mut analyse: F,
) -> Result<Tally>
where
    R: BufRead,
    W: Write,
    F: FnMut(Option<Rating>, String) -> Fut,
    Fut: Future<Output = Result<ReviewAnalysis, AnalysisError>>,
{
    let mut tally = Tally::default();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let record = |out: &mut W,
                  tally: &mut Tally,
                  resume: &mut Resume,
                  line_no: usize,
                  id: Option<&serde_json::Value>,
                  error: String|
     -> Result<()> {
        tally.errors += 1;
        let id_text = id.map(|i| format!(" (id {i})")).unwrap_or_default();
        bar.suspend(|| eprintln!("{name}:{line_no}: {error}{id_text}"));
        let row = serde_json::json!({ "line": line_no, "id": id, "error": error }).to_string();
        if resume.errors.insert(row.clone()) {
            writeln!(out, "{row}")?;
            out.flush()?;
        }
        Ok(())
    };
    while let Some(too_long) = read_line_capped(&mut input, &mut buf, MAX_LINE_BYTES)
        .with_context(|| format!("reading {name}"))?
    {
        line_no += 1;
        bar.inc(1);
        if too_long {
            let e = format!("line longer than {MAX_LINE_BYTES} bytes, skipped");
            record(out, &mut tally, resume, line_no, None, e)?;
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => {
                // The id, if the rest of the line still reads, names the line in the output.
                let lossy = String::from_utf8_lossy(&buf);
                let id = serde_json::from_str::<serde_json::Value>(&lossy)
                    .ok()
                    .and_then(|v| v.get("id").cloned());
                if let Some(id) = &id {
                    first_line_of.entry(id_key(id)).or_insert(line_no);
                }
                let e = format!(
                    "not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                );
                record(out, &mut tally, resume, line_no, id.as_ref(), e)?;
                continue;
            }
        };
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                record(
                    out,
                    &mut tally,
                    resume,
                    line_no,
                    None,
                    format!("not valid JSON: {e}"),
                )?;
                continue;
            }
        };
        let id = value.get("id").cloned();
        if let Some(id) = &id {
            if let Some(first) = first_line_of.get(&id_key(id)) {
                let e = format!("duplicate id, first on line {first}: not analysed again");
                record(out, &mut tally, resume, line_no, Some(id), e)?;
                continue;
            }
            first_line_of.insert(id_key(id), line_no);
        }
        let parsed = match InputLine::deserialize(&value) {
            Ok(p) => p,
            Err(e) => {
                let e = format!("not a review object: {e}");
                record(out, &mut tally, resume, line_no, id.as_ref(), e)?;
                continue;
            }
        };
        if resume.done.contains(&id_key(&parsed.id)) {
            tally.skipped += 1;
            continue;
        }
        let rating = match parsed.rating.map(Rating::try_from).transpose() {
            Ok(r) => r,
            Err(e) => {
                record(
                    out,
                    &mut tally,
                    resume,
                    line_no,
                    Some(&parsed.id),
                    e.to_string(),
                )?;
                continue;
            }
        };
        let a = match analyse(rating, parsed.text).await {
            Ok(a) => a,
            Err(e) if is_engine_wide(&e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("{name}:{line_no}: analysing review {}", parsed.id));
            }
            Err(e) => {
                let e = format!("analysis failed: {e}");
                record(out, &mut tally, resume, line_no, Some(&parsed.id), e)?;
                continue;
            }
        };
        let row = serde_json::json!({
            "id": parsed.id,
            "sentiment": a.sentiment,
            "sentiment_score": a.sentiment_score,
            "summary": a.summary,
            "themes": a.themes,
            "aspects": a.aspects,
            "needs_human_review": a.human_review.needed,
            "human_review_reasons": a.human_review.reasons,
            "prompt_version": a.prompt_version,
            "calibration": a.calibration,
        });
        writeln!(out, "{row}")?;
        out.flush()?;
        resume.done.insert(id_key(&parsed.id));
        tally.analysed += 1;
    }
    Ok(tally)
}

pub async fn run(cli: &Cli, cmd: &ReviewsCommand) -> Result<ExitCode> {
    let ReviewsCommand::Analyze(args) = cmd;
    // A bad calibration file stops the run before anything is opened or written.
    let sentiment = match &args.calibration {
        Some(path) => Some(crate::calibrate_cmd::load_calibration(path)?),
        None => None,
    };
    let name = args.input.display().to_string();
    let input = File::open(&args.input).with_context(|| format!("reading {name}"))?;
    let mut resume = read_resume(&args.output)?;
    // A torn last line (no newline) would glue onto the next record: terminate it first.
    let needs_newline = match File::open(&args.output) {
        Ok(mut f) => {
            use std::io::{Seek, SeekFrom};
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let mut last = [b'\n'];
            if len > 0 {
                f.seek(SeekFrom::End(-1))?;
                f.read_exact(&mut last)?;
            }
            last[0] != b'\n'
        }
        Err(_) => false,
    };
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.output)
        .with_context(|| format!("opening {}", args.output.display()))?;
    if needs_newline {
        writeln!(out)?;
    }

    let engine = cli.engine_builder().lazy(true).build()?;
    let opts = steadytext_core::GenerateOptions::default()
        .seed(args.seed)
        .use_cache(!args.no_cache);
    let classifier = cli.classifier(engine.cache().clone())?;
    let mut analyst = Analyst::new(&engine).with_options(opts);
    if let Some((e, s)) = &classifier {
        analyst = analyst.with_classifier(e, s.clone());
    }
    if let Some(sentiment) = sentiment {
        analyst = analyst.with_sentiment(sentiment);
    }

    let bar = match count_lines(&args.input) {
        Some(total) => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} lines  {elapsed} (eta {eta}) {msg}",
                )
                .expect("valid template"),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} lines  {elapsed} {msg}")
                    .expect("valid template"),
            );
            bar
        }
    };
    let analyst = &analyst;
    let tally = analyze_stream(
        BufReader::new(input),
        &name,
        &mut out,
        &mut resume,
        &bar,
        move |rating, text| async move {
            let review = ReviewInput {
                rating,
                title: None,
                text: &text,
            };
            analyst.review(&review).await
        },
    )
    .await;
    bar.finish_and_clear();
    let tally = tally?;
    eprintln!(
        "analysed {}, already done {}, errors {} -> {}",
        tally.analysed,
        tally.skipped,
        tally.errors,
        args.output.display()
    );
    Ok(if tally.errors > 0 {
        ExitCode::from(EXIT_LINE_ERRORS)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    //! The line loop with a deterministic analyser (the loop's logic is not inference; the
    //! real model runs in `tests/cli.rs`).

    use std::cell::RefCell;

    use steadytext_schema::ReviewSentiment;

    use super::*;

    /// Analyses every text as neutral with the text as summary, except texts containing
    /// `FAIL` (a per-review model error) or `GONE` (an engine-wide failure). Records calls.
    fn analyser(
        calls: &RefCell<Vec<String>>,
    ) -> impl FnMut(
        Option<Rating>,
        String,
    ) -> std::future::Ready<Result<ReviewAnalysis, AnalysisError>>
           + '_ {
        move |_rating, text| {
            calls.borrow_mut().push(text.clone());
            std::future::ready(if text.contains("FAIL") {
                Err(steadytext_core::Error::Inference("boom".into()).into())
            } else if text.contains("GONE") {
                Err(steadytext_core::Error::ModelNotFound {
                    tried: vec![],
                    fetch_hint: "fetch".into(),
                }
                .into())
            } else {
                Ok(ReviewAnalysis::new(
                    ReviewSentiment::Neutral,
                    text,
                    vec![],
                    None,
                ))
            })
        }
    }

    fn rows(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn input() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"{\"id\": 1, \"text\": \"good one\", \"rating\": 5}\n"); // 1
        v.extend_from_slice(b"{\"id\": 2, \"text\": \"bad \xff byte\"}\n"); // 2
        v.extend_from_slice(b"{\"id\": 3, \"text\": \n"); // 3: malformed JSON
        v.extend_from_slice(b"\n"); // 4: blank
        v.extend_from_slice(b"{\"id\": 4}\n"); // 5: no text
        v.extend_from_slice(b"{\"id\": 1, \"text\": \"again\"}\n"); // 6: duplicate
        v.extend_from_slice(b"{\"id\": 5, \"text\": \"FAIL here\"}\n"); // 7: model error
        v.extend_from_slice(b"{\"id\": 6, \"text\": \"rated\", \"rating\": 9}\r\n"); // 8
        v.extend_from_slice(b"{\"id\": 7, \"text\": \""); // 9: too long
        v.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES));
        v.extend_from_slice(b"\"}\n");
        v.extend_from_slice(b"{\"id\": 8, \"text\": \"good two\"}"); // 10, no final newline
        v
    }

    async fn run_once(
        input: &[u8],
        resume: &mut Resume,
        calls: &RefCell<Vec<String>>,
    ) -> (Result<Tally>, Vec<u8>) {
        let mut out = Vec::new();
        let bar = ProgressBar::hidden();
        let t = analyze_stream(input, "in.jsonl", &mut out, resume, &bar, analyser(calls)).await;
        (t, out)
    }

    #[tokio::test]
    async fn bad_lines_are_recorded_and_the_run_goes_on() {
        let input = input();
        let calls = RefCell::new(Vec::new());
        let mut resume = Resume::default();
        let (tally, out) = run_once(&input, &mut resume, &calls).await;
        assert_eq!(
            tally.unwrap(),
            Tally {
                analysed: 2,
                skipped: 0,
                errors: 7
            }
        );
        // Each analysable review went to the model once, the failing one included (no retry);
        // the duplicate, the bad lines and the out-of-range rating did not.
        assert_eq!(*calls.borrow(), ["good one", "FAIL here", "good two"]);
        let rows = rows(&out);
        let summary: Vec<(serde_json::Value, serde_json::Value, String)> = rows
            .iter()
            .map(|r| {
                let what = match r.get("error") {
                    Some(e) => e.as_str().unwrap().to_string(),
                    None => format!("ok {}", r["summary"].as_str().unwrap()),
                };
                (
                    r["id"].clone(),
                    r.get("line").cloned().unwrap_or_default(),
                    what,
                )
            })
            .collect();
        use serde_json::json as j;
        let expect = [
            (j!(1), j!(null), "ok good one"),
            (j!(2), j!(2), "not valid UTF-8"),
            (j!(null), j!(3), "not valid JSON"),
            (j!(4), j!(5), "not a review object: missing field `text`"),
            (j!(1), j!(6), "duplicate id, first on line 1"),
            (j!(5), j!(7), "analysis failed"),
            (j!(6), j!(8), "rating 9 is outside 1..=5"),
            (j!(null), j!(9), "line longer than 1048576 bytes"),
            (j!(8), j!(null), "ok good two"),
        ];
        assert_eq!(summary.len(), expect.len(), "{rows:#?}");
        for ((id, line, what), (eid, eline, ewhat)) in summary.iter().zip(expect) {
            assert_eq!((id, line), (&eid, &eline), "{rows:#?}");
            assert!(what.starts_with(ewhat), "{what:?} vs {ewhat:?}");
        }
        // Result rows keep exactly the fields they had.
        let mut keys: Vec<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aspects",
                "calibration",
                "human_review_reasons",
                "id",
                "needs_human_review",
                "prompt_version",
                "sentiment",
                "sentiment_score",
                "summary",
                "themes"
            ]
        );
    }

    #[tokio::test]
    async fn resume_skips_results_and_retries_errors_once() {
        let input = input();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let calls = RefCell::new(Vec::new());
        let (_, first) = run_once(&input, &mut Resume::default(), &calls).await;
        std::fs::write(&path, &first).unwrap();

        let mut resume = read_resume(&path).unwrap();
        assert_eq!(resume.done.len(), 2);
        assert_eq!(resume.errors.len(), 7);
        calls.borrow_mut().clear();
        let (tally, second) = run_once(&input, &mut resume, &calls).await;
        // Results are skipped; the failed review is tried again, once; the same errors are
        // reported again but not written twice.
        assert_eq!(
            tally.unwrap(),
            Tally {
                analysed: 0,
                skipped: 2,
                errors: 7
            }
        );
        assert_eq!(*calls.borrow(), ["FAIL here"]);
        assert!(second.is_empty(), "{}", String::from_utf8_lossy(&second));
    }

    #[tokio::test]
    async fn an_engine_wide_failure_stops_the_run() {
        let input = b"{\"id\": 1, \"text\": \"ok\"}\n{\"id\": 2, \"text\": \"GONE\"}\n{\"id\": 3, \"text\": \"ok too\"}\n";
        let calls = RefCell::new(Vec::new());
        let (tally, out) = run_once(input, &mut Resume::default(), &calls).await;
        let err = format!("{:#}", tally.unwrap_err());
        assert!(
            err.contains("in.jsonl:2") && err.contains("model not found"),
            "{err}"
        );
        assert_eq!(rows(&out).len(), 1);
        assert_eq!(*calls.borrow(), ["ok", "GONE"]);
    }

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let mut data = vec![b'a'; 100];
        data.extend_from_slice(b"\nshort\r\nlast");
        let mut r = BufReader::with_capacity(8, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), Some(true));
        assert!(buf.is_empty());
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), Some(false));
        assert_eq!(buf, b"short");
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), Some(false));
        assert_eq!(buf, b"last");
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), None);
    }

    #[test]
    fn lines_are_counted_by_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        std::fs::write(&p, b"a\nb\n\nc").unwrap();
        assert_eq!(count_lines(&p), Some(4));
        std::fs::write(&p, b"a\n").unwrap();
        assert_eq!(count_lines(&p), Some(1));
        std::fs::write(&p, b"").unwrap();
        assert_eq!(count_lines(&p), Some(0));
    }
}

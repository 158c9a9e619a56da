//! The wire format: request bodies for `/v1/completions` in each server dialect, and reading the
//! answers back into steadytext's types.
//!
//! | what | llama-server | other OpenAI-compatible (vLLM) |
//! |---|---|---|
//! | decoding | `temperature: 0`, `seed`, `repeat_penalty` + `repeat_last_n: 64`, `cache_prompt` | `temperature: 0`, `seed`, `repetition_penalty` |
//! | JSON Schema | a GBNF `grammar` with fixed separators ([`crate::http::gbnf`]), else `json_schema`; bounded like the local backend | `guided_json` |
//! | regex | `json_schema: {"type": "string", "pattern": "^…$"}`, the JSON string decoded | `guided_regex` |
//! | choice | one request per option with a GBNF literal `grammar` and `n_probs: 1`: the raw log-probability of each forced token plus the end token | `guided_choice`: the chosen option, others unscored |
//! | next-token log-probs | `n_probs` over the vocabulary, first token ids from `/tokenize` | not supported |

use serde_json::{json, Map, Value};

use crate::backend::{CompletionRequest, Constraint, OptionScore};
use crate::constraint::{ascii_digits, bound_schema};
use crate::error::{Error, Result};
use crate::http::gbnf::schema_to_gbnf;
use crate::http::server::{ServerInfo, ServerKind};
use crate::options::{FinishReason, Generation};

/// Tokens of recent context the repetition penalty looks at (llama.cpp's default, as locally).
const REPEAT_LAST_N: usize = 64;

/// The score reported for options a server chose against without reporting probabilities.
pub const UNSCORED: f64 = -1.0e9;

/// The common part of every completion request.
fn base_body(info: &ServerInfo, prompt: &str, max_tokens: usize, seed: u64) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(info.model_id));
    body.insert("prompt".into(), json!(prompt));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("temperature".into(), json!(0.0));
    // llama-server takes a 32-bit seed; greedy decoding does not use it, it is passed on for
    // servers that do.
    body.insert("seed".into(), json!(seed & u64::from(u32::MAX)));
    body.insert("stream".into(), json!(false));
    body
}

/// The body of a completion request.
pub(crate) fn completion_body(
    info: &ServerInfo,
    reuse_prompt_cache: bool,
    req: &CompletionRequest,
) -> Result<Value> {
    let mut body = base_body(info, &req.prompt, req.max_tokens, req.seed);
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    match info.kind {
        ServerKind::LlamaServer => {
            body.insert("cache_prompt".into(), json!(reuse_prompt_cache));
            body.insert("repeat_penalty".into(), json!(req.repeat_penalty));
            body.insert("repeat_last_n".into(), json!(REPEAT_LAST_N));
            match &req.constraint {
                Some(Constraint::JsonSchema(schema)) => {
                    // Our own grammar with fixed separators where we can write one; else the
                    // server converts the schema itself (with free whitespace).
                    let bounded = bound_schema(schema);
                    match schema_to_gbnf(&bounded) {
                        Some(grammar) => body.insert("grammar".into(), json!(grammar)),
                        None => body.insert("json_schema".into(), bounded),
                    };
                }
                Some(Constraint::Regex(pattern)) => {
                    body.insert("json_schema".into(), regex_as_string_schema(pattern));
                }
                None => {}
            }
        }
        ServerKind::OpenAi => {
            if req.repeat_penalty != 1.0 {
                body.insert("repetition_penalty".into(), json!(req.repeat_penalty));
            }
            match &req.constraint {
                Some(Constraint::JsonSchema(schema)) => {
                    body.insert("guided_json".into(), bound_schema(schema));
                }
                Some(Constraint::Regex(pattern)) => {
                    body.insert("guided_regex".into(), json!(ascii_digits(pattern)));
                }
                None => {}
            }
        }
    }
    Ok(Value::Object(body))
}

/// A regex as llama-server can enforce it: a JSON string whose `pattern` is the anchored regex.
fn regex_as_string_schema(pattern: &str) -> Value {
    json!({"type": "string", "pattern": format!("^{}$", ascii_digits(pattern))})
}

/// The first choice of an OpenAI completion response.
fn first_choice<'a>(url: &str, response: &'a Value) -> Result<&'a Value> {
    response
        .pointer("/choices/0")
        .ok_or_else(|| Error::BadResponse {
            url: url.to_string(),
            reason: format!("no choices in {}", short(response)),
        })
}

/// Read a completion response back into a [`Generation`].
///
/// A constrained request that stopped on `max_tokens` before its value was complete is
/// [`Error::Truncated`]. Otherwise the text is returned as the server produced it (a regex
/// answer of llama-server is decoded from its JSON string first) and the engine validates it.
pub(crate) fn parse_completion(
    url: &str,
    info: &ServerInfo,
    req: &CompletionRequest,
    response: &Value,
) -> Result<Generation> {
    let choice = first_choice(url, response)?;
    let raw = choice
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadResponse {
            url: url.to_string(),
            reason: format!("no text in {}", short(choice)),
        })?;
    let finish_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    };
    let usage = |k: &str| {
        response
            .pointer(&format!("/usage/{k}"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let completion_tokens = usage("completion_tokens").unwrap_or(0);
    let prompt_tokens = usage("prompt_tokens").unwrap_or(0);
    let truncated = || Error::Truncated {
        partial: raw.to_string(),
        tokens: completion_tokens,
    };
    let text = match (&req.constraint, info.kind) {
        (Some(Constraint::Regex(_)), ServerKind::LlamaServer) => {
            match serde_json::from_str::<String>(raw.trim()) {
                Ok(s) => s,
                Err(_) if finish_reason == FinishReason::Length => return Err(truncated()),
                Err(e) => {
                    return Err(Error::ConstraintViolated {
                        output: raw.to_string(),
                        reason: format!("the server returned no JSON string for the regex ({e})"),
                    })
                }
            }
        }
        (Some(Constraint::JsonSchema(_)), _) => {
            if finish_reason == FinishReason::Length
                && serde_json::from_str::<Value>(raw.trim()).is_err()
            {
                return Err(truncated());
            }
            // llama.cpp's JSON grammar allows whitespace around values; the value is the same.
            raw.trim().to_string()
        }
        (Some(Constraint::Regex(pattern)), ServerKind::OpenAi) => {
            let full = crate::constraint::full_match_regex(pattern)?;
            if finish_reason == FinishReason::Length && !full.is_match(raw) {
                return Err(truncated());
            }
            raw.to_string()
        }
        (None, _) => raw.to_string(),
    };
    Ok(Generation {
        text,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        cached: false,
    })
}

/// A GBNF grammar accepting exactly `text`.
///
/// ```
/// # use steadytext_core::http::gbnf_literal;
/// assert_eq!(gbnf_literal("a\"b\\c\nd"), r#"root ::= "a\"b\\c\nd""#);
/// ```
pub fn gbnf_literal(text: &str) -> String {
    format!("root ::= \"{}\"", gbnf_escape(text))
}

/// `text` escaped for the inside of a GBNF string literal.
pub(crate) fn gbnf_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// llama-server: the request that scores one option (the option forced by a grammar, the raw
/// log-probability of every token reported).
pub(crate) fn option_body(
    info: &ServerInfo,
    reuse_prompt_cache: bool,
    prompt: &str,
    option: &str,
    seed: u64,
) -> Value {
    // Every token is at least one byte; one more for the end token.
    let mut body = base_body(info, prompt, option.len() + 2, seed);
    body.insert("grammar".into(), json!(gbnf_literal(option)));
    body.insert("n_probs".into(), json!(1));
    body.insert("post_sampling_probs".into(), json!(false));
    body.insert("cache_prompt".into(), json!(reuse_prompt_cache));
    Value::Object(body)
}

/// llama-server: one option's score from its forced completion: the sum of the log-probabilities
/// of its tokens and of the end token after them.
pub(crate) fn parse_option_score(url: &str, option: &str, response: &Value) -> Result<OptionScore> {
    let choice = first_choice(url, response)?;
    let bad = |reason: String| Error::BadResponse {
        url: url.to_string(),
        reason,
    };
    let text = choice
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if text != option {
        return Err(Error::ConstraintViolated {
            output: text.to_string(),
            reason: format!("the server did not follow the grammar forcing {option:?}"),
        });
    }
    let entries = choice
        .pointer("/logprobs/content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no log-probabilities (n_probs) in the answer".into()))?;
    let ended = choice.get("finish_reason").and_then(Value::as_str) == Some("stop")
        && entries
            .last()
            .and_then(|e| e.get("token"))
            .and_then(Value::as_str)
            == Some("");
    if !ended {
        return Err(bad(format!(
            "option {option:?} was not followed by the end token"
        )));
    }
    let mut logprob = 0.0;
    for e in entries {
        logprob += e
            .get("logprob")
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(format!("log-probability missing in {}", short(e))))?;
    }
    Ok(OptionScore {
        logprob,
        tokens: entries.len() - 1,
    })
}

/// llama-server: the request for the next-token distribution (top `n_probs` tokens).
pub(crate) fn next_token_body(
    info: &ServerInfo,
    reuse_prompt_cache: bool,
    prompt: &str,
    n_probs: usize,
) -> Value {
    let mut body = base_body(info, prompt, 1, 0);
    body.insert("n_probs".into(), json!(n_probs));
    body.insert("post_sampling_probs".into(), json!(false));
    body.insert("cache_prompt".into(), json!(reuse_prompt_cache));
    Value::Object(body)
}

/// llama-server: `(token id, logprob)` of the first generated token's top alternatives.
pub(crate) fn parse_next_token(url: &str, response: &Value) -> Result<Vec<(u64, f64)>> {
    let choice = first_choice(url, response)?;
    let top = choice
        .pointer("/logprobs/content/0/top_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::BadResponse {
            url: url.to_string(),
            reason: "no top log-probabilities in the answer".into(),
        })?;
    Ok(top
        .iter()
        .filter_map(|e| Some((e.get("id")?.as_u64()?, e.get("logprob")?.as_f64()?)))
        .collect())
}

/// Other servers: choose by constrained decoding (`guided_choice`).
pub(crate) fn guided_choice_body(
    info: &ServerInfo,
    prompt: &str,
    options: &[String],
    seed: u64,
) -> Value {
    let longest = options.iter().map(String::len).max().unwrap_or(1);
    let mut body = base_body(info, prompt, longest + 1, seed);
    body.insert("guided_choice".into(), json!(options));
    Value::Object(body)
}

/// Other servers: the chosen option (scored 0) and the others ([`UNSCORED`]).
pub(crate) fn parse_guided_choice(
    url: &str,
    options: &[String],
    response: &Value,
) -> Result<Vec<OptionScore>> {
    let choice = first_choice(url, response)?;
    let text = choice
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(index) = options.iter().position(|o| o == text.trim()) else {
        return Err(Error::ConstraintViolated {
            output: text.to_string(),
            reason: format!(
                "not one of the options {options:?} (the server ignored guided_choice)"
            ),
        });
    };
    Ok(options
        .iter()
        .enumerate()
        .map(|(i, _)| OptionScore {
            logprob: if i == index { 0.0 } else { UNSCORED },
            tokens: 0,
        })
        .collect())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: ServerKind) -> ServerInfo {
        ServerInfo {
            kind,
            model_id: "m".into(),
            build: None,
            model_meta: None,
            context_length: 2048,
            chat_template: None,
            slots: None,
        }
    }

    fn request(constraint: Option<Constraint>) -> CompletionRequest {
        CompletionRequest {
            prompt: "p".into(),
            max_tokens: 8,
            stop: vec![],
            seed: 42,
            constraint,
            repeat_penalty: 1.1,
        }
    }

    #[test]
    fn regex_maps_to_an_anchored_string_schema_for_llama_server() {
        let body = completion_body(
            &info(ServerKind::LlamaServer),
            false,
            &request(Some(Constraint::Regex(r"\d{4}".into()))),
        )
        .unwrap();
        assert_eq!(
            body["json_schema"],
            json!({"type": "string", "pattern": "^[0-9]{4}$"})
        );
        assert_eq!(body["temperature"], json!(0.0));
        assert_eq!(body["cache_prompt"], json!(false));
    }

    #[test]
    fn constraints_map_to_guided_params_elsewhere() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let llama = completion_body(
            &info(ServerKind::LlamaServer),
            false,
            &request(Some(Constraint::JsonSchema(schema.clone()))),
        )
        .unwrap();
        assert!(
            llama["grammar"].as_str().unwrap().contains("char{0,200}"),
            "{llama}"
        );
        let body = completion_body(
            &info(ServerKind::OpenAi),
            false,
            &request(Some(Constraint::JsonSchema(schema))),
        )
        .unwrap();
        assert_eq!(
            body["guided_json"]["properties"]["a"]["maxLength"],
            json!(200)
        );
        assert!(body.get("json_schema").is_none());
    }

    #[test]
    fn a_regex_answer_is_decoded_from_its_json_string() {
        let req = request(Some(Constraint::Regex(r"\d+".into())));
        let response = json!({"choices": [{"text": "\"2024\" ", "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let g = parse_completion("u", &info(ServerKind::LlamaServer), &req, &response).unwrap();
        assert_eq!(g.text, "2024");
        assert_eq!(g.completion_tokens, 4);
    }

    #[test]
    fn an_incomplete_constrained_answer_is_truncated() {
        let req = request(Some(Constraint::JsonSchema(json!({"type": "object"}))));
        let response = json!({"choices": [{"text": "{\"a\": \"b", "finish_reason": "length"}]});
        let err =
            parse_completion("u", &info(ServerKind::LlamaServer), &req, &response).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
    }

    #[test]
    fn option_scores_include_the_end_token() {
        let response = json!({"choices": [{"text": "yes", "finish_reason": "stop", "logprobs": {"content": [
            {"id": 1, "token": "yes", "logprob": -1.5},
            {"id": 2, "token": "", "logprob": -0.5}
        ]}}]});
        let s = parse_option_score("u", "yes", &response).unwrap();
        assert_eq!(s.logprob, -2.0);
        assert_eq!(s.tokens, 1);
        let wrong = json!({"choices": [{"text": "no", "finish_reason": "stop"}]});
        assert!(matches!(
            parse_option_score("u", "yes", &wrong),
            Err(Error::ConstraintViolated { .. })
        ));
    }
}

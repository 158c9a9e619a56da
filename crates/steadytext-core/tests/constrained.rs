//! Constrained generation on the real default model: every output holds, bad constraints are
//! typed errors.

mod common;

use proptest::prelude::*;
use serde_json::{json, Value};
use steadytext_core::{Error, GenerateOptions};

fn ticket_schema() -> Value {
    // The seed's ticket schema, verbatim (shorthand form).
    json!({
        "urgency": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "sentiment": {"type": "string", "enum": ["angry", "frustrated", "neutral", "satisfied", "happy"]},
        "root_cause": {"type": "string"},
        "suggested_resolution": {"type": "string"},
        "follow_up_needed": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}}
    })
}

fn strategies_schema() -> Value {
    // The seed's segment-strategies schema with the issue's exactly-3 bound.
    json!({
        "strategies": {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "expected_impact": {"type": "string"}
                },
                "required": ["name", "description", "expected_impact"],
                "additionalProperties": false
            }
        }
    })
}

/// An independent validator (jsonschema, not the engine's own path) over the normalised schema.
fn assert_valid(schema: &Value, value: &Value) {
    let normalized = steadytext_core::constraint::normalize_schema(schema).unwrap();
    let validator = jsonschema::validator_for(&normalized).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value} violates the schema: {errors:?}");
}

const TICKETS: &[&str] = &[
    "Analyze support ticket: Subject: Late delivery, Description: My order was supposed to arrive last week but still hasnt been delivered. Tracking shows no updates., Category: shipping",
    "Analyze support ticket: Subject: Product defect, Description: The product stopped working after one week. It wont turn on anymore despite following all troubleshooting steps., Category: product_issue",
    "Analyze support ticket: Subject: Thank you!, Description: Just wanted to say the replacement arrived quickly and works perfectly., Category: feedback",
    "Analyze support ticket: Subject: Charged twice, Description: I was billed two times for the same order and I am furious. Fix this now or I will dispute it., Category: billing",
];

#[tokio::test]
async fn seed_ticket_schema_always_validates() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(256);
    for prompt in TICKETS {
        let v = engine
            .generate_json(prompt, &ticket_schema(), &opts)
            .await
            .unwrap();
        eprintln!("{v}");
        assert_valid(&ticket_schema(), &v);
        // Deterministic: the same call gives the same value.
        assert_eq!(
            engine
                .generate_json(prompt, &ticket_schema(), &opts)
                .await
                .unwrap(),
            v
        );
    }
}

#[tokio::test]
async fn seed_strategies_schema_gives_exactly_three() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(512);
    for segment in ["premium", "budget"] {
        let v = engine
            .generate_json(
                &format!("Suggest 3 marketing strategies for {segment} segment"),
                &strategies_schema(),
                &opts,
            )
            .await
            .unwrap();
        eprintln!("{v}");
        assert_valid(&strategies_schema(), &v);
        assert_eq!(v["strategies"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn choice_returns_a_member_for_the_seed_labels() {
    let engine = common::uncached();
    let labels = [
        "very_positive",
        "positive",
        "neutral",
        "negative",
        "very_negative",
    ];
    let c = engine
        .choice(
            "Classify sentiment of this review (rating 1/5): Product broke after just one week of use. Customer support was unhelpful and refused to honor the warranty. Will not buy from this company again.",
            &labels,
            &GenerateOptions::default(),
        )
        .await
        .unwrap();
    eprintln!("{c:?}");
    assert!(labels.contains(&c.choice.as_str()));
    assert_eq!(labels[c.index], c.choice);
    assert_eq!(c.scores.len(), 5);
    assert!(c
        .scores
        .iter()
        .all(|s| s.logprob.is_finite() && s.logprob < 0.0));
}

#[tokio::test]
async fn regex_output_fully_matches() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(32);
    for (prompt, pattern) in [
        ("Give a date in ISO format.", r"\d{4}-\d{2}-\d{2}"),
        ("Make up a US phone number.", r"\(\d{3}\) \d{3}-\d{4}"),
        ("Is the sky blue? Answer yes or no.", "(yes|no)"),
        ("Name a colour in lower case.", "[a-z]+"),
    ] {
        let out = engine.generate_regex(prompt, pattern, &opts).await.unwrap();
        eprintln!("{pattern} -> {out:?}");
        // Independent check; `\d` in our patterns means ASCII digits.
        let re = regex::Regex::new(&format!("^(?:{})$", pattern.replace(r"\d", "[0-9]"))).unwrap();
        assert!(re.is_match(&out), "{out:?} !~ {pattern}");
    }
}

#[tokio::test]
async fn choice_handles_tricky_option_sets() {
    let engine = common::uncached();
    let opts = GenerateOptions::default();
    let sets: &[&[&str]] = &[
        &["a", "ab", "abc"],
        &["abc", "ab", "a"],
        &["\"quoted\"", "comma, separated", "back\\slash"],
        &["日本語", "émoji 🎉", "Ünïcödé"],
        &["yes", "yes!", " yes"],
        &["<|im_end|>", "<|im_start|>", "plain"],
    ];
    for set in sets {
        let c = engine
            .choice("Pick the best option.", set, &opts)
            .await
            .unwrap();
        assert!(set.contains(&c.choice.as_str()), "{c:?}");
        assert_eq!(set[c.index], c.choice);
        assert!(c.scores.iter().all(|s| s.logprob.is_finite()), "{c:?}");
        let again = engine
            .choice("Pick the best option.", set, &opts)
            .await
            .unwrap();
        assert_eq!(again, c);
    }
}

#[tokio::test]
async fn bad_constraints_are_typed_errors() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(16);
    assert!(matches!(
        engine.choice("x", &["only"], &opts).await,
        Err(Error::TooFewChoices(1))
    ));
    assert!(matches!(
        engine.choice("x", &["a", ""], &opts).await,
        Err(Error::EmptyChoice { index: 1 })
    ));
    assert!(matches!(
        engine.choice("x", &["a", "a"], &opts).await,
        Err(Error::DuplicateChoice { .. })
    ));
    assert!(matches!(
        engine.choice("", &["a", "b"], &opts).await,
        Err(Error::EmptyPrompt)
    ));
    assert!(matches!(
        engine
            .generate_json("x", &json!({"type": "strnig"}), &opts)
            .await,
        Err(Error::InvalidSchema(_))
    ));
    assert!(matches!(
        engine.generate_json("x", &json!(42), &opts).await,
        Err(Error::InvalidSchema(_))
    ));
    assert!(
        matches!(
            engine
                .generate_json(
                    "x",
                    &json!({"type": "integer", "minimum": 5, "maximum": 1}),
                    &opts
                )
                .await,
            Err(Error::InvalidSchema(_))
        ),
        "an unsatisfiable schema cannot be enforced"
    );
    assert!(matches!(
        engine.generate_regex("x", "(unclosed", &opts).await,
        Err(Error::InvalidRegex { .. })
    ));
    assert!(matches!(
        engine.generate_regex("x", "a{5,2}", &opts).await,
        Err(Error::InvalidRegex { .. })
    ));
}

#[tokio::test]
async fn running_out_of_tokens_is_truncated_never_invalid() {
    let engine = common::uncached();
    let opts = GenerateOptions::default().max_tokens(5);
    match engine
        .generate_json(TICKETS[0], &ticket_schema(), &opts)
        .await
    {
        Err(Error::Truncated { partial, tokens }) => {
            assert_eq!(tokens, 5);
            assert!(partial.starts_with('{'), "{partial:?}");
            assert!(serde_json::from_str::<Value>(&partial).is_err());
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(matches!(
        engine
            .generate_regex("Count to twenty.", r"(\d+ ){20}", &opts)
            .await,
        Err(Error::Truncated { .. })
    ));
}

#[tokio::test]
async fn generate_typed_deserialises_the_seed_ticket() {
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Ticket {
        urgency: Urgency,
        follow_up_needed: bool,
        #[schemars(length(max = 5))]
        tags: Vec<String>,
    }
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Urgency {
        Low,
        Medium,
        High,
        Critical,
    }
    let engine = common::uncached();
    let t: Ticket = engine
        .generate_typed(TICKETS[3], &GenerateOptions::default().max_tokens(200))
        .await
        .unwrap();
    assert!(t.tags.len() <= 5, "{t:?}");
}

#[tokio::test]
async fn constraints_are_part_of_the_cache_key() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::cached(dir.path());
    let opts = GenerateOptions::default().max_tokens(40);
    let a = json!({"answer": {"type": "string", "enum": ["yes", "no"]}});
    let b = json!({"answer": {"type": "string", "enum": ["no", "yes"]}});
    let va = engine
        .generate_json("Is water wet?", &a, &opts)
        .await
        .unwrap();
    let vb = engine
        .generate_json("Is water wet?", &b, &opts)
        .await
        .unwrap();
    for v in [&va, &vb] {
        assert!(v["answer"] == "yes" || v["answer"] == "no");
    }
    let g = engine
        .generate_constrained(
            "Is water wet?",
            steadytext_core::Constraint::JsonSchema(a.clone()),
            &opts,
        )
        .await
        .unwrap();
    assert!(g.cached, "same schema, same key");
    let g = engine
        .generate_constrained(
            "Is water wet?",
            steadytext_core::Constraint::JsonSchema(b.clone()),
            &opts,
        )
        .await
        .unwrap();
    assert!(g.cached);
    // Key order inside a schema does not matter (canonical form) ...
    let reordered: Value =
        serde_json::from_str(r#"{"answer": {"enum": ["yes", "no"], "type": "string"}}"#).unwrap();
    assert!(
        engine
            .generate_constrained(
                "Is water wet?",
                steadytext_core::Constraint::JsonSchema(reordered),
                &opts
            )
            .await
            .unwrap()
            .cached
    );
    // ... but option order does, for choice as for enums.
    let c1 = engine
        .choice("Is water wet?", &["yes", "no"], &opts)
        .await
        .unwrap();
    let c2 = engine
        .choice("Is water wet?", &["no", "yes"], &opts)
        .await
        .unwrap();
    assert!(!c1.cached && !c2.cached);
    assert_eq!(c1.choice, c2.choice, "the same answer whatever the order");
    assert!(
        engine
            .choice("Is water wet?", &["yes", "no"], &opts)
            .await
            .unwrap()
            .cached
    );
    // A regex and a plain generation of the same prompt never share an entry.
    let r = engine
        .generate_regex("Is water wet?", "(yes|no)", &opts)
        .await
        .unwrap();
    assert!(r == "yes" || r == "no");
    assert!(
        !engine
            .generate("Is water wet?", &opts)
            .await
            .unwrap()
            .cached
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn option_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[A-Za-z ,\"'\\\\]{1,12}",
        "\\PC{1,6}",
        Just("<|im_end|>".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_choice_is_a_member(mut options in proptest::collection::vec(option_text(), 2..6), prefix in "[a-z]{1,3}") {
        // Add prefix chains to exercise shared-prefix scoring.
        options.push(prefix.clone());
        options.push(format!("{prefix}{prefix}"));
        let mut seen = std::collections::HashSet::new();
        options.retain(|o| !o.is_empty() && seen.insert(o.clone()));
        prop_assume!(options.len() >= 2);
        let engine = common::uncached();
        let c = rt().block_on(engine.choice("Choose one.", &options, &GenerateOptions::default())).unwrap();
        prop_assert!(options.contains(&c.choice));
        prop_assert_eq!(&options[c.index], &c.choice);
    }
}

#[derive(Debug, Clone)]
enum Field {
    Enum(Vec<String>),
    Integer(i64, i64),
    Boolean,
    Str(u64),
    EnumArray(Vec<String>, u64, u64),
}

impl Field {
    fn schema(&self) -> Value {
        match self {
            Field::Enum(v) => json!({"type": "string", "enum": v}),
            Field::Integer(lo, hi) => json!({"type": "integer", "minimum": lo, "maximum": hi}),
            Field::Boolean => json!({"type": "boolean"}),
            Field::Str(max) => json!({"type": "string", "maxLength": max}),
            Field::EnumArray(v, lo, hi) => {
                json!({"type": "array", "items": {"enum": v}, "minItems": lo, "maxItems": hi})
            }
        }
    }
}

fn field() -> impl Strategy<Value = Field> {
    let words = proptest::collection::hash_set("[a-z]{2,7}", 2..5)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>());
    prop_oneof![
        words.clone().prop_map(Field::Enum),
        (-50i64..50, 0i64..100).prop_map(|(lo, span)| Field::Integer(lo, lo + span)),
        Just(Field::Boolean),
        (1u64..40).prop_map(Field::Str),
        (words, 0u64..2, 2u64..4).prop_map(|(w, lo, hi)| Field::EnumArray(w, lo, hi)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_json_output_validates(fields in proptest::collection::btree_map("[a-z_]{1,10}", field(), 1..4)) {
        let mut props = serde_json::Map::new();
        for (k, f) in &fields {
            props.insert(k.clone(), f.schema());
        }
        let schema = Value::Object(props); // the seed's shorthand
        let engine = common::uncached();
        let v = rt().block_on(engine.generate_json("Fill in the record.", &schema, &GenerateOptions::default().max_tokens(200))).unwrap();
        assert_valid(&schema, &v);
    }

    #[test]
    fn every_regex_output_fully_matches(parts in proptest::collection::vec(prop_oneof![
        Just(r"\d{2,4}".to_string()),
        Just("[a-z]{1,6}".to_string()),
        Just("(red|green|blue)".to_string()),
        Just("-".to_string()),
        Just(" ".to_string()),
        "[A-Z]{1,3}".prop_map(|s| regex::escape(&s)),
    ], 1..5)) {
        let pattern = parts.concat();
        let engine = common::uncached();
        let out = rt().block_on(engine.generate_regex("Write something.", &pattern, &GenerateOptions::default().max_tokens(40))).unwrap();
        let re = regex::Regex::new(&format!("^(?:{})$", pattern.replace(r"\d", "[0-9]"))).unwrap();
        prop_assert!(re.is_match(&out), "{:?} !~ {}", out, pattern);
    }
}

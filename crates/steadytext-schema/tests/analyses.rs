//! The seed's analyses on the real default model.

use std::sync::{Arc, OnceLock};

use steadytext_core::{Backend, Cache, Engine};
use steadytext_schema::faithfulness::{self, Grounding};
use steadytext_schema::prompts::{PromptBuilder, ReviewInput, TicketInput};
use steadytext_schema::scenario::{run_scenario, seed_sample};
use steadytext_schema::{Analyst, Polarity, Rating, RecommendationInputs, RecommendationType};

/// One model and one in-memory cache per test binary: later tests reuse earlier results.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let backend = Engine::builder()
            .build_backend()
            .expect("model loads (run scripts/fetch-model)");
        Engine::new(
            Arc::new(backend) as Arc<dyn Backend>,
            Cache::new(vec![Arc::new(steadytext_core::cache::MemoryStore::new(
                64 << 20,
            ))]),
        )
    })
}

#[tokio::test]
async fn review_analysis_is_typed_deterministic_and_sensible() {
    let analyst = Analyst::new(engine());
    let bad = ReviewInput {
        rating: Some(Rating::new(1).unwrap()),
        title: Some("Very disappointed"),
        text: "Product broke after just one week of use. Customer support was unhelpful and refused to honor the warranty. Will not buy from this company again.",
    };
    let good = ReviewInput {
        rating: Some(Rating::new(5).unwrap()),
        title: Some("Excellent product!"),
        text: "This product exceeded my expectations. The quality is outstanding and the customer service was impeccable. Would definitely recommend to friends and family.",
    };
    let a = analyst.review(&bad).await.unwrap();
    assert_eq!(a.sentiment.polarity(), Polarity::Negative, "{a:?}");
    assert_eq!(a.sentiment_score, a.sentiment.score());
    assert!(!a.summary.is_empty() && !a.summary.contains('\n'), "{a:?}");
    assert!((1..=3).contains(&a.themes.len()), "{a:?}");
    assert!(a
        .themes
        .iter()
        .all(|t| !t.is_empty() && t.chars().count() <= 40));
    assert_eq!(a.prompt_version, steadytext_schema::PROMPT_VERSION);
    if a.sentiment_score <= -0.75 {
        assert!(
            a.human_review.needed,
            "very negative reviews go to a person: {a:?}"
        );
    }
    let g = analyst.review(&good).await.unwrap();
    assert_eq!(g.sentiment.polarity(), Polarity::Positive, "{g:?}");
    // Deterministic: a fresh analyst over an uncached engine gives the same result.
    let fresh = Engine::new(engine().backend().clone(), Cache::disabled());
    assert_eq!(Analyst::new(&fresh).review(&bad).await.unwrap(), a);
}

#[tokio::test]
async fn ticket_analysis_has_the_seeds_six_keys() {
    let analyst = Analyst::new(engine());
    let t = analyst
        .ticket(&TicketInput {
            category: Some("billing"),
            subject: Some("Charged twice"),
            description: Some(
                "I was billed two times for the same order and I am furious. Fix this now.",
            ),
        })
        .await
        .unwrap();
    assert!(t.tags.len() <= 5);
    t.validate().unwrap();
    let v = serde_json::to_value(&t).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "category",
            "follow_up_needed",
            "root_cause",
            "rules",
            "sentiment",
            "suggested_resolution",
            "tags",
            "urgency"
        ],
        "the seed's six keys, plus the category and the rules that fired"
    );
    assert_eq!(t.category, "billing_payment");
    assert!(t.urgency >= steadytext_schema::Urgency::High, "{t:?}");
}

#[tokio::test]
async fn the_seed_scenario_runs_through_every_analysis() {
    let analyst = Analyst::new(engine());
    let now = chrono::Utc::now();
    let r = run_scenario(&analyst, seed_sample(now), now).await.unwrap();
    assert_eq!(r.reviews.len(), 3);
    assert_eq!(r.tickets.len(), 2);
    for (_, t) in &r.tickets {
        assert_eq!(
            t.priority, t.analysis.urgency,
            "no priority was set, so urgency decides"
        );
    }
    assert_eq!(r.churn.len(), 3, "every customer gets a risk score");
    assert!(r
        .churn
        .iter()
        .all(|(_, risk)| (0.0..=1.0).contains(&risk.score)));
    let reportable = r.churn.iter().filter(|(_, risk)| risk.score > 0.3).count();
    assert_eq!(r.retention.len(), reportable);
    assert_eq!(r.segments.len(), 3);
    for s in &r.segments {
        assert_eq!(s.strategies.strategies.len(), 3);
        assert!(!s.ai_profile.is_empty());
    }
    assert_eq!(
        r.dashboard.len(),
        3,
        "no customer is dropped from the dashboard"
    );
    let recs = &r.recommendations.recommendations;
    assert!(!recs.is_empty() && recs.len() <= 5);
    assert!(recs.windows(2).all(|w| w[0].priority <= w[1].priority));
    let retention = recs
        .iter()
        .find(|r| r.recommendation_type == RecommendationType::Retention)
        .unwrap();
    assert_eq!(retention.priority, 2, "customer 1 is not at risk > 0.5");
    assert!(!r.executive.insights.is_empty());

    // Every product named exists in the data and was not reviewed by the customer; every
    // play-based text is its play's template filled with facts.
    let data = seed_sample(now);
    let products: Vec<i32> = data.reviews.iter().filter_map(|r| r.product_id).collect();
    let books = analyst.playbooks();
    for rec in recs {
        match rec.recommendation_type {
            RecommendationType::Product => {
                let id = rec
                    .product_id
                    .expect("a product recommendation names its product");
                assert!(products.contains(&id), "{rec:?}");
                assert_eq!(rec.title, format!("Product {id}"));
                assert!(!data
                    .reviews
                    .iter()
                    .any(|v| v.customer_id == Some(1) && v.product_id == Some(id)));
            }
            kind => {
                let play = rec
                    .play
                    .as_deref()
                    .expect("retention and upsell come from plays");
                let list = if kind == RecommendationType::Retention {
                    &books.retention
                } else {
                    &books.upsell
                };
                assert!(list.iter().any(|p| p.id == play), "{rec:?}");
            }
        }
        // No figure in a recommendation that the customer's facts do not hold.
        let facts = format!(
            "{} {}",
            RecommendationInputs::from_records(
                &data.customers[0],
                &data.customers,
                &data.reviews,
                &data.tickets
            )
            .facts_line(),
            products
                .iter()
                .map(|p| format!("Product {p}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if rec.recommendation_type != RecommendationType::Product {
            assert_eq!(
                faithfulness::check(&rec.description, &facts, ""),
                Ok(()),
                "{rec:?}"
            );
        }
    }
    // Seed data: the only product rated 4 or more is 101, which customer 1 reviewed.
    assert!(!recs
        .iter()
        .any(|r| r.recommendation_type == RecommendationType::Product));

    for s in &r.segments {
        let ids: std::collections::BTreeSet<&str> = s
            .strategies
            .strategies
            .iter()
            .map(|m| m.play.as_str())
            .collect();
        assert_eq!(ids.len(), 3, "three distinct plays: {:?}", s.strategies);
        for m in &s.strategies.strategies {
            assert!(books.marketing.iter().any(|p| p.id == m.play), "{m:?}");
            assert!(!m.description.contains('{'), "{m:?}");
        }
    }
    for s in &r.retention {
        assert!(!s.actions.is_empty(), "a retention strategy has actions");
        assert!(s
            .actions
            .iter()
            .all(|a| books.retention.iter().any(|p| p.id == a.play)));
    }
    assert!(!r.executive.actions.is_empty());

    // Every free text shown is model prose that passes the faithfulness check against its
    // prompt's facts, or those facts (with the chosen actions), labelled as the fallback.
    let prompts = PromptBuilder::new();
    let mut shown: Vec<(Grounding, &str, steadytext_schema::prompts::Prompt)> = Vec::new();
    for s in &r.retention {
        shown.push((
            s.grounding,
            &s.strategy,
            prompts.retention_strategy(&s.risk, &s.actions),
        ));
    }
    for d in &r.dashboard {
        shown.push((
            d.grounding,
            &d.insight,
            prompts.customer_insight(&d.snapshot),
        ));
    }
    shown.push((
        r.executive.grounding,
        &r.executive.insights,
        prompts.executive_summary(&r.executive.stats, &r.executive.actions),
    ));
    for s in &r.retention {
        if s.grounding == Grounding::Fallback {
            for a in &s.actions {
                assert!(
                    s.strategy.contains(&a.action),
                    "the fallback states the actions"
                );
            }
        }
    }
    for (grounding, text, prompt) in &shown {
        match grounding {
            Grounding::Checked => assert_eq!(
                faithfulness::check(text, prompt.facts(), prompt.as_str()),
                Ok(()),
                "{text}"
            ),
            Grounding::Fallback => assert_eq!(*text, prompt.facts()),
        }
        assert!(!text.is_empty());
    }
    for s in &r.segments {
        if s.grounding == Grounding::Checked {
            assert!(!s.ai_profile.contains("Salesforce"), "{}", s.ai_profile);
        }
    }
}

//! Ticket analysis on the real default model: grounded and closed-set.

use std::sync::{Arc, OnceLock};

use steadytext_core::{Backend, Cache, Engine};
use steadytext_schema::prompts::TicketInput;
use steadytext_schema::quote::is_quoted;
use steadytext_schema::resolutions::{ResolutionEntry, ResolutionPlaybook};
use steadytext_schema::scenario::seed_sample;
use steadytext_schema::taxonomy::Taxonomy;
use steadytext_schema::{Analyst, TicketAnalysis, Urgency};

/// One model and one in-memory cache per test binary.
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

/// What every ticket analysis must be, whatever the model says.
fn assert_grounded(t: &TicketInput<'_>, a: &TicketAnalysis) {
    let taxonomy = Taxonomy::default();
    let playbook = ResolutionPlaybook::default();
    let source = t
        .description
        .filter(|d| !d.trim().is_empty())
        .or(t.subject)
        .unwrap_or("");
    assert!(
        is_quoted(&a.root_cause, source),
        "root cause {:?} is not quoted from {source:?}",
        a.root_cause
    );
    assert!(a.root_cause.split_whitespace().count() <= 6, "{a:?}");
    assert!(taxonomy.get(&a.category).is_some(), "{a:?}");
    assert_eq!(a.tags.first(), Some(&a.category), "{a:?}");
    assert!(a.tags.len() <= 5);
    assert!(
        a.tags.iter().all(|k| taxonomy.get(k).is_some()),
        "tags are taxonomy keys: {a:?}"
    );
    assert!(
        playbook
            .entries()
            .iter()
            .any(|e| e.resolution == a.suggested_resolution),
        "resolution comes from the playbook: {a:?}"
    );
    assert!(!a.rules.is_empty());
}

fn input<'a>(category: Option<&'a str>, subject: &'a str, description: &'a str) -> TicketInput<'a> {
    TicketInput {
        category,
        subject: Some(subject),
        description: Some(description),
    }
}

#[tokio::test]
async fn seed_tickets_are_grounded_and_actionable() {
    let analyst = Analyst::new(engine());
    let data = seed_sample(chrono::Utc::now());
    let late = TicketInput::from_ticket(&data.tickets[0]);
    let defect = TicketInput::from_ticket(&data.tickets[1]);

    let a = analyst.ticket(&late).await.unwrap();
    eprintln!(
        "late delivery: {}",
        serde_json::to_string_pretty(&a).unwrap()
    );
    assert_grounded(&late, &a);
    assert_eq!(a.category, "shipping_delivery");
    assert_ne!(a.sentiment.to_string(), "happy");
    assert!(a.sentiment.score() <= -0.5, "still not delivered: {a:?}");
    assert!(a.follow_up_needed, "a frustrated customer gets a follow-up");
    assert!(a.root_cause.split_whitespace().count() >= 2, "{a:?}");

    let d = analyst.ticket(&defect).await.unwrap();
    eprintln!(
        "product defect: {}",
        serde_json::to_string_pretty(&d).unwrap()
    );
    assert_grounded(&defect, &d);
    assert_eq!(d.category, "defects_durability");
    assert!(d.urgency >= Urgency::High, "it stopped working: {d:?}");
    assert!(d.follow_up_needed);
    assert!(d.root_cause.split_whitespace().count() >= 2, "{d:?}");
    assert!(
        d.suggested_resolution.contains("replacement"),
        "{}",
        d.suggested_resolution
    );

    // Deterministic: a fresh uncached engine gives the same analyses.
    let fresh = Engine::new(engine().backend().clone(), Cache::disabled());
    assert_eq!(Analyst::new(&fresh).ticket(&late).await.unwrap(), a);
}

#[tokio::test]
async fn outages_double_charges_and_breakage_are_at_least_high() {
    let analyst = Analyst::new(engine());
    let cases = [
        input(
            Some("technical"),
            "Site down",
            "The site is down and I cannot place my order. Please fix it.",
        ),
        input(
            Some("billing"),
            "Charged twice",
            "I was charged twice for the same order and I am furious. Fix this now.",
        ),
        input(
            None,
            "Blender",
            "My blender stopped working after two uses, the motor just hums.",
        ),
        input(
            None,
            "Login",
            "I can't log in since yesterday, the password reset email never arrives.",
        ),
    ];
    let mut categories = Vec::new();
    for t in &cases {
        let a = analyst.ticket(t).await.unwrap();
        eprintln!("{:?}: {}", t.subject, serde_json::to_string(&a).unwrap());
        assert_grounded(t, &a);
        assert!(a.urgency >= Urgency::High, "{t:?}: {a:?}");
        assert!(a.follow_up_needed, "{a:?}");
        categories.push(a.category.clone());
        if a.category == "billing_payment" {
            assert_eq!(
                a.suggested_resolution,
                "Refund the duplicate charge and confirm by email with the refund reference."
            );
        }
    }
    assert_eq!(categories[1], "billing_payment");
    assert_eq!(categories[2], "defects_durability");
}

#[tokio::test]
async fn critical_needs_a_rule_and_quiet_tickets_stay_low() {
    let analyst = Analyst::new(engine());
    let fire = input(
        None,
        "Charger",
        "The charger caught fire on my desk last night.",
    );
    let a = analyst.ticket(&fire).await.unwrap();
    assert_grounded(&fire, &a);
    assert_eq!(a.urgency, Urgency::Critical, "{a:?}");
    assert!(a.rules.iter().any(|r| r.contains("safety hazard")), "{a:?}");

    let question = input(
        None,
        "Question",
        "Hello, could you tell me which colours the scarf comes in? Thanks!",
    );
    let q = analyst.ticket(&question).await.unwrap();
    eprintln!("question: {}", serde_json::to_string(&q).unwrap());
    assert_grounded(&question, &q);
    assert!(q.urgency <= Urgency::Medium, "only rules give high: {q:?}");
    assert!(q.sentiment.score() >= 0.0, "a polite question: {q:?}");
    assert!(!q.follow_up_needed, "{q:?}");

    // Empty description: the subject is quoted.
    let bare = TicketInput {
        category: None,
        subject: Some("Refund not received"),
        description: Some(""),
    };
    let b = analyst.ticket(&bare).await.unwrap();
    assert_grounded(&bare, &b);
    assert!(is_quoted(&b.root_cause, "Refund not received"), "{b:?}");
    assert_eq!(b.category, "returns_refunds");
}

#[tokio::test]
async fn a_users_playbook_decides_the_resolution() {
    let mine = ResolutionPlaybook::new(vec![
        ResolutionEntry {
            category: "shipping_delivery".into(),
            cause_keywords: vec!["tracking".into(), "deliver".into()],
            resolution: "Call the customer today and book a courier pickup.".into(),
        },
        ResolutionEntry {
            category: "other".into(),
            cause_keywords: vec![],
            resolution: "Reply within a day.".into(),
        },
    ])
    .unwrap();
    let analyst = Analyst::new(engine()).with_playbook(mine);
    let data = seed_sample(chrono::Utc::now());
    let a = analyst
        .ticket(&TicketInput::from_ticket(&data.tickets[0]))
        .await
        .unwrap();
    assert_eq!(
        a.suggested_resolution,
        "Call the customer today and book a courier pickup."
    );
    let d = analyst
        .ticket(&TicketInput::from_ticket(&data.tickets[1]))
        .await
        .unwrap();
    assert_eq!(d.suggested_resolution, "Reply within a day.", "catch-all");
}

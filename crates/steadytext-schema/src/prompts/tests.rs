use chrono::{Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::churn::{churn_risk, ChurnInputs};
use crate::enums::{CustomerStatus, InteractionType};
use crate::records::CustomerInteraction;

fn seed_review(id: i32, customer: i32, rating: u8, title: &str, text: &str) -> ProductReview {
    ProductReview {
        id,
        customer_id: Some(customer),
        product_id: Some(100 + id),
        rating: Some(Rating::new(rating).unwrap()),
        title: Some(title.into()),
        review_text: Some(text.into()),
        verified_purchase: false,
        helpful_count: 0,
        ai_summary: None,
        sentiment: None,
        key_themes: None,
        review_aspects: None,
        created_at: Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap(),
    }
}

fn seed_ticket(customer: i32, category: &str, subject: &str, description: &str) -> SupportTicket {
    SupportTicket {
        id: 1,
        ticket_number: Some("TICK-001".into()),
        customer_id: Some(customer),
        category: Some(category.into()),
        priority: None,
        subject: Some(subject.into()),
        description: Some(description.into()),
        resolution: None,
        satisfaction_score: None,
        ai_analysis: None,
        created_at: Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap(),
        resolved_at: None,
    }
}

fn sample_risk() -> ChurnRisk {
    let day = |d| NaiveDate::from_ymd_opt(2024, 6, d).unwrap();
    churn_risk(&ChurnInputs {
        as_of: day(30),
        last_active: Some(day(15)),
        interaction_count: 4,
        avg_sentiment: Some(-0.5),
        support_tickets: 2,
        avg_satisfaction: Some(2.0),
        lifetime_value: 450.0,
    })
}

fn sample_segment() -> SegmentStats {
    SegmentStats {
        segment_name: "premium".into(),
        customer_count: 120,
        avg_lifetime_value: Some(2500.0),
        avg_sentiment: Some(0.62),
        interaction_types: vec![InteractionType::Purchase, InteractionType::Review],
        review_count: 40,
        avg_rating: Some(4.25),
        common_themes: vec!["quality".into(), "customer service".into()],
        topics: vec![],
        at_risk_customers: 12,
    }
}

fn sample_snapshot() -> CustomerSnapshot {
    CustomerSnapshot {
        customer_id: 2,
        segment: Some("regular".into()),
        avg_sentiment: Some(-0.1),
        interaction_count: 3,
        last_interaction: None,
        interaction_types: vec![InteractionType::Support, InteractionType::Review],
        issue_count: 1,
        avg_satisfaction: Some(3.0),
        status: CustomerStatus::MediumRisk,
    }
}

const EXCELLENT: &str = "This product exceeded my expectations. The quality is outstanding and the customer service was impeccable. Would definitely recommend to friends and family.";

#[test]
fn review_prompts() {
    let b = PromptBuilder::new();
    let review = seed_review(1, 1, 5, "Excellent product!", EXCELLENT);
    let input = ReviewInput::from_review(&review);
    assert_eq!(
        b.review_sentiment(&input).text,
        format!(
            "Classify the sentiment of this customer review (rating 5/5). Answer with one of: \
             very_positive, positive, neutral, negative, very_negative.\nTitle: Excellent product!\nReview: {EXCELLENT}"
        )
    );
    assert_eq!(
        b.review_summary(&input).text,
        format!("Summarize this customer review in one sentence.\nTitle: Excellent product!\nReview: {EXCELLENT}")
    );
    assert_eq!(
        b.review_themes(&input).text,
        format!(
            "Quote up to 3 key phrases from this customer review that say what the customer liked or \
             disliked.\n\
             Title: Excellent product!\nReview: {EXCELLENT}"
        )
    );
    // Unknown rating, no title, no text.
    let bare = ReviewInput::default();
    assert_eq!(
        b.review_sentiment(&bare).text,
        "Classify the sentiment of this customer review. Answer with one of: very_positive, \
         positive, neutral, negative, very_negative.\nReview: (no text)"
    );
}

#[test]
fn ticket_prompts() {
    let t = seed_ticket(
        2,
        "shipping",
        "Late delivery",
        "My order was supposed to arrive last week but still hasnt been delivered.\n\nTracking shows no updates.",
    );
    let b = PromptBuilder::new();
    let input = TicketInput::from_ticket(&t);
    let body = "Category: shipping\nSubject: Late delivery\nDescription: My order was supposed to \
                arrive last week but still hasnt been delivered. Tracking shows no updates.";
    let p = b.ticket_urgency(&input);
    assert_eq!(
        p.text,
        format!(
            "How urgent is this support ticket? low: a question or a small issue that can wait; \
             medium: a problem the customer can work around; high: the customer cannot use the \
             product, the service or their account, or was charged wrongly; critical: a safety, \
             legal or security risk. Answer with one of: low, medium, high, critical.\n{body}"
        )
    );
    assert_eq!(p.max_tokens(), None);
    assert_eq!(
        b.ticket_sentiment(&input).text,
        format!(
            "What is the customer's mood in this support ticket? Answer with one of: angry, \
             frustrated, neutral, satisfied, happy.\n{body}"
        )
    );
    assert_eq!(
        b.ticket_category(&input, &["shipping & delivery", "other"])
            .text,
        format!(
            "Which category does this support ticket belong to? Answer with one of: shipping & \
             delivery, other.\n{body}"
        )
    );
    let p = b.ticket_root_cause(&input);
    assert_eq!(
        p.text,
        format!(
            "Quote the words of this support ticket's description that state the cause of the \
             customer's problem.\n{body}"
        )
    );
    assert_eq!(p.max_tokens(), Some(64));
    for p in [b.ticket_urgency(&input), b.ticket_root_cause(&input)] {
        assert!(!p.text.contains("TICK-001"));
    }
    let (shown, original) = b.ticket_quote_source(&input).unwrap();
    assert_eq!(
        shown,
        "My order was supposed to arrive last week but still hasnt been delivered. Tracking shows no updates."
    );
    assert_eq!(original, t.description.as_deref().unwrap());

    // No description: the subject is quoted.
    let subject_only = TicketInput {
        description: Some("  "),
        ..input
    };
    assert_eq!(
        b.ticket_quote_source(&subject_only).unwrap().0,
        "Late delivery"
    );
    assert!(b
        .ticket_root_cause(&subject_only)
        .text
        .starts_with("Quote the words of this support ticket's subject"));
    assert_eq!(b.ticket_quote_source(&TicketInput::default()), None);
}

#[test]
fn retention_prompt() {
    let p = PromptBuilder::new().retention_strategy(&sample_risk(), &[]);
    assert_eq!(
        p.text,
        "Write a short retention strategy for this customer that explains the recommended actions.\n\
         Churn risk score 0.70 (0 = safe, 1 = about to leave). \
         Risk factors: 15 days inactive; average sentiment -0.50 (from -1 to 1); 2 support tickets in the \
         last 90 days; average support satisfaction 2.0 out of 5; lifetime value $450.00."
    );
    let action = crate::playbooks::ChosenPlay {
        play: "check-in".into(),
        title: "Check-in message".into(),
        action: "Send a short check-in.".into(),
        expected_impact: None,
        chosen_by: crate::playbooks::ChosenBy::Rules,
    };
    let p = PromptBuilder::new().retention_strategy(&sample_risk(), &[action.clone(), action]);
    assert!(p.facts().starts_with("Churn risk score 0.70"));
    assert!(p.facts().ends_with(
        "$450.00.\nRecommended actions: Check-in message: Send a short check-in. \
         Check-in message: Send a short check-in."
    ));
}

#[test]
fn segment_prompts() {
    let b = PromptBuilder::new();
    assert_eq!(
        b.segment_profile(&sample_segment()).text,
        "Create a detailed profile of the \"premium\" customer segment.\nCustomers: 120. Average lifetime \
         value: $2500.00. Sentiment: very positive. Reviews: 40, average rating 4.3 out of 5. Common review \
         themes: quality, customer service. Interaction types: purchase, review."
    );
    assert_eq!(
        b.segment_strategies(&sample_segment()).text,
        "Suggest exactly 3 marketing strategies for the \"premium\" customer segment, each with a name, a \
         description and its expected impact.\nCustomers: 120. Average lifetime value: $2500.00. \
         Sentiment: very positive."
    );
    let empty = SegmentStats {
        avg_lifetime_value: None,
        avg_sentiment: None,
        interaction_types: vec![],
        review_count: 0,
        avg_rating: None,
        common_themes: vec![],
        ..sample_segment()
    };
    assert_eq!(
        b.segment_profile(&empty).text,
        "Create a detailed profile of the \"premium\" customer segment.\nCustomers: 120. Average lifetime \
         value: unknown. Sentiment: no data. Reviews: none."
    );
}

#[test]
fn recommendation_prompts() {
    let b = PromptBuilder::new();
    let profile = CustomerProfile {
        segment: Some("premium".into()),
        lifetime_value: 2500.0,
        churn_risk: Some(0.123),
        interests: vec!["quality".into(), "service".into()],
        avg_rating_given: Some(5.0),
    };
    assert_eq!(
        b.recommendation(RecommendationType::Product, &profile).text,
        "Suggest one product for this customer: a short title, and a description of why it is a good fit.\n\
         Customer profile: segment premium; lifetime value $2500.00; churn risk 0.12; interests: quality, \
         service; average rating given 5.0 out of 5."
    );
    let unknown = CustomerProfile::from_records(
        &Customer {
            segment: None,
            ..Customer::example()
        },
        &[],
    );
    assert_eq!(
        b.recommendation(RecommendationType::Retention, &unknown).text,
        "Create one retention offer for this customer: a short title, and a description of its benefits to them.\n\
         Customer profile: segment unknown; lifetime value $2500.00; churn risk unknown; interests: unknown."
    );
    assert!(b
        .recommendation(RecommendationType::Upsell, &unknown)
        .text
        .starts_with(
            "Suggest one upsell opportunity for this customer: a short title, and a pitch.\n"
        ));
}

#[test]
fn insight_and_executive_prompts() {
    let b = PromptBuilder::new();
    assert_eq!(
        b.customer_insight(&sample_snapshot()).text,
        "Analyze this customer's behavior in two or three sentences and suggest one next step.\n\
         Segment: regular. Last 90 days: average sentiment -0.10 (neutral; from -1 to 1) over 3 interactions \
         (support, review). Last 30 days: 1 support ticket, average satisfaction 3.0 out of 5. Status: medium risk."
    );
    let quiet = CustomerSnapshot {
        segment: None,
        avg_sentiment: None,
        interaction_count: 0,
        interaction_types: vec![],
        issue_count: 0,
        avg_satisfaction: None,
        status: CustomerStatus::Normal,
        ..sample_snapshot()
    };
    assert_eq!(
        b.customer_insight(&quiet).text,
        "Analyze this customer's behavior in two or three sentences and suggest one next step.\n\
         Last 90 days: 0 interactions, no sentiment scores. Last 30 days: no support tickets. Status: normal."
    );
    let stats = ExecutiveStats {
        total_customers: 3,
        high_risk_customers: 1,
        avg_lifetime_value: Some(3100.0 / 3.0),
        total_reviews: 3,
        avg_rating: Some(3.0),
        open_tickets: 2,
    };
    assert_eq!(
        b.executive_summary(&stats, &[]).text,
        "Write a short executive summary of customer health: the main risk, and how the recommended actions address it.\n\
         3 customers, 1 at high churn risk (score above 0.7). Average lifetime value: $1033.33. 3 reviews, \
         average rating 3.0 out of 5. 2 open support tickets."
    );
}

#[test]
fn every_kind_has_a_version_and_a_budget_rule() {
    for kind in PromptKind::ALL {
        let choice = matches!(
            kind,
            PromptKind::ReviewSentiment
                | PromptKind::ReviewCategory
                | PromptKind::PlayChoice
                | PromptKind::TicketUrgency
                | PromptKind::TicketSentiment
                | PromptKind::TicketCategory
        );
        assert_eq!(kind.max_tokens().is_none(), choice, "{kind}");
    }
    assert_eq!(PROMPT_VERSION, "ci-prompts/3");
}

#[test]
fn long_text_is_cut_before_redaction_between_words() {
    // The phone straddles the budget: the cut falls before it, not inside it, and leaves no
    // half placeholder either (redacting first and cutting after gave `… [phon…`).
    let near_end = format!(
        "{} 06 12 34 56 78 more",
        "a".repeat(MAX_FREE_TEXT_CHARS - 9)
    );
    let p = PromptBuilder::new().review_summary(&ReviewInput {
        text: &near_end,
        ..Default::default()
    });
    let tail = &p.text[p.text.len() - 20..];
    assert!(p.text.ends_with("aaa…"), "{tail}");
    assert!(
        !p.text.contains("[ph") && !p.text.contains("06 12"),
        "{tail}"
    );
    // An email at the budget: cut before it, whole.
    let near_end = format!(
        "{} write josé@correo.es",
        "b".repeat(MAX_FREE_TEXT_CHARS - 12)
    );
    let p = PromptBuilder::new().review_summary(&ReviewInput {
        text: &near_end,
        ..Default::default()
    });
    assert!(
        p.text.ends_with("write…"),
        "{}",
        &p.text[p.text.len() - 20..]
    );
    // Names that redaction lengthens past the budget are cut between words, not inside `[name]`.
    let customer = Customer {
        first_name: Some("Al".into()),
        last_name: Some("Bo".into()),
        ..Customer::example()
    };
    let text = "Al Bo ".repeat(MAX_FREE_TEXT_CHARS / 6 + 10);
    let p = PromptBuilder::for_customer(&customer).review_summary(&ReviewInput {
        text: &text,
        ..Default::default()
    });
    assert!(
        p.text.ends_with("[name]…"),
        "{}",
        &p.text[p.text.len() - 20..]
    );
    assert!(!p.text.contains("Al") && !p.text.contains("Bo"));
}

#[test]
fn signatures_on_their_own_line_are_redacted() {
    let p = PromptBuilder::new().review_summary(&ReviewInput {
        text: "Works well.\n\nKind regards,\n  Maria García\n",
        ..Default::default()
    });
    assert!(
        p.text
            .ends_with("Review: Works well. Kind regards, [name] [name]"),
        "{}",
        p.text
    );
}

#[test]
fn long_text_is_cut_after_redaction() {
    let text = format!("{} call 555-123-4567", "a ".repeat(MAX_FREE_TEXT_CHARS));
    let p = PromptBuilder::new().review_summary(&ReviewInput {
        text: &text,
        ..Default::default()
    });
    assert!(p.text.ends_with('…'));
    assert!(!p.text.contains("555"));
    let near_end = format!("{} 555-123-4567", "a".repeat(MAX_FREE_TEXT_CHARS - 7));
    let p = PromptBuilder::new().review_summary(&ReviewInput {
        text: &near_end,
        ..Default::default()
    });
    assert!(
        !p.text.contains("555-1"),
        "{}",
        &p.text[p.text.len() - 40..]
    );
}

// ---- privacy properties ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Pii {
    first: String,
    last: String,
    email: String,
    phone: String,
    uuid: Uuid,
    id: i32,
}

fn pii() -> impl Strategy<Value = Pii> {
    let digits = |n: usize| proptest::string::string_regex(&format!("[0-9]{{{n}}}")).unwrap();
    let phone = prop_oneof![
        (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("{a}-{b}-{c}")),
        (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("({a}) {b}-{c}")),
        (digits(3), digits(3), digits(4)).prop_map(|(a, b, c)| format!("+1 {a} {b} {c}")),
        (digits(2), digits(4), digits(4)).prop_map(|(a, b, c)| format!("+44 {a} {b} {c}")),
        digits(10),
    ];
    (
        "[A-Z][a-z]{3,9}",
        "[A-Z][a-z]{3,11}",
        "[a-z0-9][a-z0-9._+-]{0,12}",
        "[a-z][a-z0-9-]{0,8}",
        "[a-z]{2,4}",
        phone,
        any::<u128>(),
        1i32..1_000_000,
    )
        .prop_map(|(first, last, local, domain, tld, phone, uuid, id)| Pii {
            first,
            last,
            email: format!("{local}@{domain}.{tld}"),
            phone,
            uuid: Uuid::from_u128(uuid),
            id,
        })
}

fn filler() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "the", "product", "arrived", "late", "quality", "is", "great", "please", "refund",
            "broken", "box", "support", "was", "helpful", "never", "again", "love", "it",
        ]),
        0..20,
    )
    .prop_map(|w| w.join(" "))
}

/// Every prompt this crate can build for one customer whose own text embeds `text`.
fn all_prompts(customer: &Customer, text: &str) -> Vec<Prompt> {
    let now = Utc.with_ymd_and_hms(2024, 6, 30, 12, 0, 0).unwrap();
    let mut review = seed_review(1, customer.id, 2, text, text);
    review.key_themes = Some(vec![text.chars().take(60).collect(), "quality".into()]);
    let ticket = SupportTicket {
        created_at: now - Duration::days(3),
        satisfaction_score: Some(2),
        ..seed_ticket(customer.id, text, text, text)
    };
    let interaction = CustomerInteraction {
        id: 1,
        customer_id: Some(customer.id),
        interaction_type: Some(InteractionType::Review),
        channel: None,
        content: Some(text.into()),
        metadata: None,
        sentiment_score: Some(-0.5),
        timestamp: now - Duration::days(2),
    };
    let customers = std::slice::from_ref(customer);
    let interactions = std::slice::from_ref(&interaction);
    let reviews = std::slice::from_ref(&review);
    let tickets = std::slice::from_ref(&ticket);

    let b = PromptBuilder::for_customer(customer);
    let input = ReviewInput::from_review(&review);
    let risk = churn_risk(&ChurnInputs::from_records(
        customer,
        interactions,
        tickets,
        now,
    ));
    let segment = customer.segment.clone().unwrap_or_default();
    let stats = SegmentStats::from_records(&segment, customers, interactions, reviews);
    let profile = CustomerProfile::from_records(customer, reviews);
    let snapshot = CustomerSnapshot::from_records(customer, interactions, tickets, now);
    let exec = ExecutiveStats::from_records(customers, reviews, tickets);
    let mut prompts = vec![
        b.review_sentiment(&input),
        b.review_summary(&input),
        b.review_themes(&input),
        b.ticket_urgency(&TicketInput::from_ticket(&ticket)),
        b.ticket_sentiment(&TicketInput::from_ticket(&ticket)),
        b.ticket_category(&TicketInput::from_ticket(&ticket), &["a", "b"]),
        b.ticket_root_cause(&TicketInput::from_ticket(&ticket)),
        b.retention_strategy(&risk, &[]),
        b.segment_profile(&stats),
        b.segment_strategies(&stats),
        b.customer_insight(&snapshot),
        b.executive_summary(&exec, &[]),
        b.play_choice("marketing", &b.segment_facts_line(&stats)),
    ];
    for kind in RecommendationType::ALL {
        prompts.push(b.recommendation(*kind, &profile));
    }
    prompts
}

fn customer_with(p: &Pii, segment: &str) -> Customer {
    Customer {
        id: p.id,
        customer_id: p.uuid,
        email: p.email.clone(),
        first_name: Some(p.first.clone()),
        last_name: Some(p.last.clone()),
        segment: Some(segment.into()),
        ..Customer::example()
    }
}

proptest! {
    /// For generated customers, no prompt contains their email, names, phone, UUID, or the
    /// typed-in PII, even when the customer wrote all of it into their review and ticket.
    #[test]
    fn prompts_never_contain_customer_pii(p in pii(), before in filler(), after in filler(), segment in "[a-z]{3,8}") {
        let text = format!(
            "{before} {first} {last} here, mail {email} or call {phone}, {after}",
            first = p.first, last = p.last, email = p.email, phone = p.phone
        );
        // The same prompts for a customer with no PII in the text tell us which words the
        // templates and filler contain anyway; a generated name that happens to be one of them
        // (say "Product") cannot be told apart from the template, so skip it.
        let baseline_text = format!("{before} [name] [name] here, mail [email] or call [phone], {after}");
        let baseline: String = all_prompts(&customer_with(&Pii { first: "Xq".into(), last: "Zq".into(), ..p.clone() }, &segment), &baseline_text)
            .iter().map(|q| q.text.to_lowercase()).collect::<Vec<_>>().join("\n");
        prop_assume!(!baseline.contains(&p.first.to_lowercase()));
        prop_assume!(!baseline.contains(&p.last.to_lowercase()));

        let customer = customer_with(&p, &segment);
        for prompt in all_prompts(&customer, &text) {
            let lower = prompt.text.to_lowercase();
            prop_assert!(!lower.contains(&p.email.to_lowercase()), "{:?}: {}", prompt.kind, prompt.text);
            prop_assert!(!prompt.text.contains(&p.phone), "{:?}: {}", prompt.kind, prompt.text);
            prop_assert!(!lower.contains(&p.first.to_lowercase()), "{:?}: {}", prompt.kind, prompt.text);
            prop_assert!(!lower.contains(&p.last.to_lowercase()), "{:?}: {}", prompt.kind, prompt.text);
            prop_assert!(!lower.contains(&p.uuid.to_string()), "{:?}", prompt.kind);
            prop_assert!(!prompt.text.contains(&format!("customer {}", p.id)), "{:?}", prompt.kind);
        }
    }

    /// Builders without the customer's identity still drop emails and phones typed into text.
    #[test]
    fn generic_builder_drops_typed_emails_and_phones(p in pii(), before in filler()) {
        let text = format!("{before} {} {}", p.email, p.phone);
        let b = PromptBuilder::new();
        let ticket = TicketInput { description: Some(&text), subject: Some(&text), category: None };
        for prompt in [b.review_summary(&ReviewInput { text: &text, ..Default::default() }), b.ticket_urgency(&ticket), b.ticket_root_cause(&ticket)] {
            prop_assert!(!prompt.text.contains(&p.email));
            prop_assert!(!prompt.text.contains(&p.phone));
        }
    }
}

//! The seed's sample scenario, in memory: its 3 customers, 3 reviews and 2 tickets run through
//! every analysis, with no database. `steadytext demo` prints it; the PostgreSQL adapter runs the
//! same analyses over real tables.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::analysis::{AnalysisResult, Analyst};
use crate::analysis_types::{
    AnalyzedTicket, CustomerInsight, CustomerRecommendations, ExecutiveSummary, RetentionStrategy,
    ReviewAnalysis, SegmentProfile,
};
use crate::batch::{self, DEFAULT_CONCURRENCY};
use crate::churn::{ChurnInputs, ChurnRisk};
use crate::executive::ExecutiveStats;
use crate::privacy::NameDirectory;
use crate::progress::{
    NoProgress, Progress, Stage, STAGE_CHURN, STAGE_DASHBOARD, STAGE_PENDING, STAGE_SEGMENTS,
};
use crate::prompts::{ReviewInput, TicketInput};
use crate::recommendations::RecommendationInputs;
use crate::records::{Customer, CustomerInteraction, ProductReview, Rating, SupportTicket};
use crate::segments::{segment_names, SegmentStats};
use crate::status::CustomerSnapshot;

/// The seed's sample rows.
#[derive(Debug, Clone)]
pub struct SampleData {
    /// John Doe (premium), Jane Smith (regular), Bob Wilson (budget).
    pub customers: Vec<Customer>,
    /// One review per customer (ratings 5, 3, 1).
    pub reviews: Vec<ProductReview>,
    /// TICK-001 (shipping, Jane) and TICK-002 (product defect, Bob).
    pub tickets: Vec<SupportTicket>,
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")
}

/// The seed's `INSERT`s, as records created at `now`.
pub fn seed_sample(now: DateTime<Utc>) -> SampleData {
    let customer = |id, email: &str, first: &str, last: &str, segment: &str, ltv, acq| Customer {
        id,
        email: email.into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        segment: Some(segment.into()),
        lifetime_value: ltv,
        acquisition_date: Some(date(acq)),
        last_active_date: None,
        churn_risk_score: None,
        created_at: now,
        updated_at: now,
        ..Customer::example()
    };
    let review = |id, customer_id, product_id, rating: u8, title: &str, text: &str| ProductReview {
        id,
        customer_id: Some(customer_id),
        product_id: Some(product_id),
        rating: Some(Rating::new(rating).expect("seed ratings are 1..=5")),
        title: Some(title.into()),
        review_text: Some(text.into()),
        verified_purchase: false,
        helpful_count: 0,
        ai_summary: None,
        sentiment: None,
        key_themes: None,
        review_aspects: None,
        created_at: now,
    };
    let ticket =
        |id, number: &str, customer_id, category: &str, subject: &str, description: &str| {
            SupportTicket {
                id,
                ticket_number: Some(number.into()),
                customer_id: Some(customer_id),
                category: Some(category.into()),
                priority: None,
                subject: Some(subject.into()),
                description: Some(description.into()),
                resolution: None,
                satisfaction_score: None,
                ai_analysis: None,
                created_at: now,
                resolved_at: None,
            }
        };
    SampleData {
        customers: vec![
            customer(1, "john.doe@email.com", "John", "Doe", "premium", 2500.0, "2023-01-15"),
            customer(2, "jane.smith@email.com", "Jane", "Smith", "regular", 450.0, "2023-06-20"),
            customer(3, "bob.wilson@email.com", "Bob", "Wilson", "budget", 150.0, "2024-01-10"),
        ],
        reviews: vec![
            review(1, 1, 101, 5, "Excellent product!", "This product exceeded my expectations. The quality is outstanding and the customer service was impeccable. Would definitely recommend to friends and family."),
            review(2, 2, 102, 3, "Decent but could be better", "The product works as advertised but the shipping took forever and the packaging was damaged. The product itself is okay for the price."),
            review(3, 3, 103, 1, "Very disappointed", "Product broke after just one week of use. Customer support was unhelpful and refused to honor the warranty. Will not buy from this company again."),
        ],
        tickets: vec![
            ticket(1, "TICK-001", 2, "shipping", "Late delivery", "My order was supposed to arrive last week but still hasnt been delivered. Tracking shows no updates."),
            ticket(2, "TICK-002", 3, "product_issue", "Product defect", "The product stopped working after one week. It wont turn on anymore despite following all troubleshooting steps."),
        ],
    }
}

/// Everything the scenario produced.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Review id and its analysis.
    pub reviews: Vec<(i32, ReviewAnalysis)>,
    /// Ticket id and its analysis (with priority set from urgency when missing).
    pub tickets: Vec<(i32, AnalyzedTicket)>,
    /// Every customer's churn risk (the seed updates all of them).
    pub churn: Vec<(i32, ChurnRisk)>,
    /// Retention strategies for customers above the seed's 0.3 threshold.
    pub retention: Vec<RetentionStrategy>,
    /// One profile per segment.
    pub segments: Vec<SegmentProfile>,
    /// The sentiment dashboard: one row per customer (none dropped), with an insight.
    pub dashboard: Vec<CustomerInsight>,
    /// Recommendations for customer 1.
    pub recommendations: CustomerRecommendations,
    /// The executive summary.
    pub executive: ExecutiveSummary,
}

/// Run every analysis over `data` as of `now`, the way the seed's triggers and functions would,
/// with [`DEFAULT_CONCURRENCY`] calls in flight and no progress reports.
pub async fn run_scenario(
    analyst: &Analyst<'_>,
    data: SampleData,
    now: DateTime<Utc>,
) -> AnalysisResult<ScenarioReport> {
    run_scenario_with(analyst, data, now, DEFAULT_CONCURRENCY, &NoProgress).await
}

/// [`run_scenario`] with `concurrency` model calls in flight per stage and `progress`
/// reports — the orchestration of the PostgreSQL path (`steadytext-pg`'s `Intelligence`):
/// the same [`batch::ordered`] stages, the same redaction (each row's prompts scrubbed of its
/// author's names and of every customer name in the data, [`Analyst::for_author`]), results
/// in input order.
pub async fn run_scenario_with(
    analyst: &Analyst<'_>,
    mut data: SampleData,
    now: DateTime<Utc>,
    concurrency: usize,
    progress: &dyn Progress,
) -> AnalysisResult<ScenarioReport> {
    let names = Arc::new(NameDirectory::new(
        data.customers
            .iter()
            .map(|c| (c.first_name.as_deref(), c.last_name.as_deref())),
    ));
    let customers = data.customers.clone();
    let author = |id: Option<i32>| {
        let owner = customers.iter().find(|c| Some(c.id) == id);
        analyst.for_author(owner, &names)
    };
    let mut interactions: Vec<CustomerInteraction> = Vec::new();
    let mut log = |new: crate::records::NewInteraction| {
        interactions.push(CustomerInteraction {
            id: interactions.len() as i32 + 1,
            customer_id: new.customer_id,
            interaction_type: Some(new.interaction_type),
            channel: Some(new.channel),
            content: new.content,
            metadata: Some(new.metadata),
            sentiment_score: new.sentiment_score,
            timestamp: now,
        });
    };

    let stage = Stage::start(
        progress,
        STAGE_PENDING,
        (data.reviews.len() + data.tickets.len()) as u64,
    );
    let analysed = batch::ordered(&data.reviews, concurrency, &stage, |review| {
        let analyst = author(review.customer_id);
        async move { analyst.review(&ReviewInput::from_review(review)).await }
    })
    .await?;
    let mut reviews = Vec::new();
    for (review, a) in data.reviews.iter_mut().zip(analysed) {
        a.apply_to(review);
        log(a.interaction(review));
        reviews.push((review.id, a));
    }

    let analysed = batch::ordered(&data.tickets, concurrency, &stage, |ticket| {
        let analyst = author(ticket.customer_id);
        async move { analyst.ticket(&TicketInput::from_ticket(ticket)).await }
    })
    .await?;
    let mut tickets = Vec::new();
    for (ticket, a) in data.tickets.iter_mut().zip(analysed) {
        log(a.interaction(ticket));
        let analysed = AnalyzedTicket::new(ticket, a);
        ticket.priority = Some(analysed.priority);
        ticket.ai_analysis = Some(analysed.analysis.clone());
        tickets.push((ticket.id, analysed));
    }

    let mut churn = Vec::new();
    for customer in &mut data.customers {
        let inputs = ChurnInputs::from_records(customer, &interactions, &data.tickets, now);
        let risk = crate::churn::churn_risk(&inputs);
        customer.churn_risk_score = Some(risk.rounded_score());
        churn.push((customer.id, risk));
    }
    let reportable: Vec<&(i32, ChurnRisk)> =
        churn.iter().filter(|(_, r)| r.is_reportable()).collect();
    let stage = Stage::start(progress, STAGE_CHURN, reportable.len() as u64);
    let retention = batch::ordered(&reportable, concurrency, &stage, |(id, risk)| {
        analyst.retention_strategy(*id, risk)
    })
    .await?
    .into_iter()
    .flatten()
    .collect();

    let stats: Vec<SegmentStats> = segment_names(&data.customers)
        .iter()
        .map(|name| SegmentStats::from_records(name, &data.customers, &interactions, &data.reviews))
        .collect();
    let stage = Stage::start(progress, STAGE_SEGMENTS, stats.len() as u64);
    let segments =
        batch::ordered(&stats, concurrency, &stage, |s| analyst.segment_profile(s)).await?;

    let snapshots: Vec<(CustomerSnapshot, Option<f64>)> = data
        .customers
        .iter()
        .map(|c| {
            (
                CustomerSnapshot::from_records(c, &interactions, &data.tickets, now),
                c.churn_risk_score,
            )
        })
        .collect();
    let stage = Stage::start(progress, STAGE_DASHBOARD, snapshots.len() as u64);
    let dashboard = batch::ordered(&snapshots, concurrency, &stage, |(snapshot, risk)| {
        analyst.customer_insight(snapshot, *risk)
    })
    .await?;

    let first = &data.customers[0];
    let inputs =
        RecommendationInputs::from_records(first, &data.customers, &data.reviews, &data.tickets);
    let recommendations = analyst.recommendations(first.id, &inputs, 5).await?;

    let stats = ExecutiveStats::from_records(&data.customers, &data.reviews, &data.tickets);
    let executive = analyst.executive_summary(&stats).await?;

    Ok(ScenarioReport {
        reviews,
        tickets,
        churn,
        retention,
        segments,
        dashboard,
        recommendations,
        executive,
    })
}

//! `support_tickets.satisfaction_score` outside 1..=5 (the column has no CHECK) is clamped when
//! read and in every aggregate, so no analysis sees "9.0 out of 5".

use sqlx::PgPool;
use steadytext_pg::{aggregates, rows, MIGRATOR};
use steadytext_schema::churn::ChurnInputs;
use steadytext_schema::CustomerSnapshot;

const ROWS: &str = "
INSERT INTO customers (id, email, segment) VALUES
  (101, 'nine@example.com', 'premium'),
  (102, 'zero@example.com', 'premium'),
  (103, 'both@example.com', 'budget');
INSERT INTO support_tickets (ticket_number, customer_id, satisfaction_score, created_at) VALUES
  ('S-1', 101, 9, now() - interval '1 day'),
  ('S-2', 102, 0, now() - interval '1 day'),
  ('S-3', 103, 9, now() - interval '2 days'),
  ('S-4', 103, 0, now() - interval '2 days'),
  ('S-5', 103, 4, now() - interval '2 days');
";

#[sqlx::test(migrator = "MIGRATOR")]
async fn out_of_range_satisfaction_is_clamped_everywhere(pool: PgPool) {
    sqlx::raw_sql(ROWS).execute(&pool).await.unwrap();

    let tickets = rows::tickets(&pool, None).await.unwrap();
    let scores: Vec<(Option<String>, Option<i32>)> = tickets
        .iter()
        .map(|t| (t.ticket_number.clone(), t.satisfaction_score))
        .collect();
    let s = |n: &str, v: i32| (Some(n.to_string()), Some(v));
    assert_eq!(
        scores,
        [
            s("S-1", 5),
            s("S-2", 1),
            s("S-3", 5),
            s("S-4", 1),
            s("S-5", 4)
        ]
    );

    let mut tx = pool.begin().await.unwrap();
    let (now,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let churn = aggregates::churn_inputs(&mut tx, now).await.unwrap();
    let avg = |id: i32| {
        churn
            .iter()
            .find(|(c, _)| c.id == id)
            .map(|(_, i)| i.avg_satisfaction)
            .unwrap()
    };
    // Unclamped these would be 9.0, 0.0 and 13/3.
    assert_eq!(avg(101), Some(5.0));
    assert_eq!(avg(102), Some(1.0));
    assert_eq!(avg(103), Some(10.0 / 3.0));
    let (_, zero) = churn.iter().find(|(c, _)| c.id == 102).unwrap();
    assert!(zero.satisfaction_is_low());
    let risk = steadytext_schema::churn_risk(zero);
    assert!((0.0..=1.0).contains(&risk.score));

    let dash = aggregates::dashboard_snapshots(&mut tx, now).await.unwrap();
    for (c, snap) in &dash {
        if let Some(a) = snap.avg_satisfaction {
            assert!((1.0..=5.0).contains(&a), "customer {}: {a}", c.id);
        }
    }
    let nine = dash.iter().find(|(c, _)| c.id == 101).unwrap();
    assert_eq!(nine.1.avg_satisfaction, Some(5.0));

    // The in-memory path over the same rows agrees.
    let customers = rows::customers(&mut *tx).await.unwrap();
    for (c, sql) in &churn {
        let mem = ChurnInputs::from_records(c, &[], &tickets, now);
        assert_eq!(
            sql.avg_satisfaction, mem.avg_satisfaction,
            "customer {}",
            c.id
        );
    }
    for (c, sql) in &dash {
        let customer = customers.iter().find(|x| x.id == c.id).unwrap();
        let mem = CustomerSnapshot::from_records(customer, &[], &tickets, now);
        assert_eq!(
            sql.avg_satisfaction, mem.avg_satisfaction,
            "customer {}",
            c.id
        );
    }
}

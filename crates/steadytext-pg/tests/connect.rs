//! Store::connect: typed, quick, password-free errors; a working connection to the real server.

use std::time::{Duration, Instant};

use steadytext_pg::{PgError, Store, StoreOptions};

fn quick() -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn connection_refused_is_a_typed_quick_error_without_the_password() {
    let started = Instant::now();
    let err = Store::connect_with("postgres://postgres:hunter2@127.0.0.1:1/postgres", &quick())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        PgError::Connect { url, source } => {
            assert_eq!(url, "postgres://postgres:***@127.0.0.1:1/postgres");
            assert!(matches!(source, sqlx::Error::Io(_)), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("hunter2"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_a_typed_error() {
    let err = Store::connect_with("postgres://u:pw@host:notaport/db", &quick())
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

#[tokio::test]
async fn connects_to_the_real_server_and_reports_unknown_databases() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let store = Store::connect_with(&url, &quick()).await.unwrap();
    let (one,): (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(one, 1);

    let (base, _) = url.rsplit_once('/').unwrap();
    let missing = format!("{base}/steadytext_no_such_database");
    let err = Store::connect_with(&missing, &quick()).await.unwrap_err();
    assert!(matches!(err, PgError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("steadytext_no_such_database"),
        "{err}"
    );
}

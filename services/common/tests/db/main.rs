//! The pool's session settings against the real PostgreSQL: every connection has its
//! statement and idle-in-transaction timeouts, and a statement that runs out of time is a
//! transient failure that answers 503, not a 500.

use common::db;
use common::ApiError;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

#[tokio::test]
async fn every_pooled_session_has_the_statement_and_idle_transaction_timeouts() {
    let pool = db::pool(&db::database_url(SERVER, "postgres"), 2).expect("pool");
    let client = pool.get().await.expect("a connection");
    let show = |name: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("SHOW");
            row.get::<_, String>(0)
        }
    };
    assert_eq!(show("statement_timeout").await, "4s");
    assert_eq!(show("idle_in_transaction_session_timeout").await, "10s");
}

#[tokio::test]
async fn a_statement_out_of_time_is_transient_and_answers_503_database_busy() {
    let pool = db::pool(&db::database_url(SERVER, "postgres"), 1).expect("pool");
    let mut client = pool.get().await.expect("a connection");
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("SET LOCAL statement_timeout = 50")
        .await
        .expect("set");
    let err = tx
        .query_one("SELECT pg_sleep(2)", &[])
        .await
        .expect_err("cancelled by the timeout");
    assert!(db::is_transient(&err), "{err:?}");
    let api = ApiError::from(err);
    assert_eq!(api.code(), "database_busy");
    assert_eq!(actix_web::ResponseError::status_code(&api).as_u16(), 503);
}

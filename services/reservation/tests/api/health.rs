use crate::helpers::{assert_error, json, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_ok_with_the_database_up() {
    let app = spawn_app().await;

    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");

    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(json(ready).await["status"], "ready");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let app = spawn_app().await;

    let unknown = app
        .http
        .get(app.url("/api/nope"))
        .send()
        .await
        .expect("GET");
    let wrong_method = app
        .http
        .delete(app.url("/api/reservations"))
        .send()
        .await
        .expect("DELETE");

    assert_error(unknown, 404, "not_found").await;
    assert_error(wrong_method, 405, "method_not_allowed").await;
}

use crate::helpers::{assert_error, json, spawn_app, Row};
use common::auth::TokenKeys;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn reserving_without_a_token_or_with_a_forged_one_is_unauthorized() {
    let app = spawn_app().await;
    let body = json!({ "cart_id": Uuid::new_v4() });
    let forged = TokenKeys::new("not-the-suite-secret", 60)
        .issue(Uuid::new_v4())
        .expect("issue");

    let missing = app.reserve(None, &body).await;
    let forged = app.reserve(Some(&forged), &body).await;

    assert_error(missing, 401, "missing_token").await;
    assert_error(forged, 401, "invalid_token").await;
}

#[tokio::test]
async fn malformed_reserve_bodies_are_rejected_before_any_call() {
    let app = spawn_app().await;
    let token = app.token(Uuid::new_v4());

    let not_json = app
        .http
        .post(app.url("/api/reservations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"cart_id\":")
        .send()
        .await
        .expect("POST");
    let missing_field = app.reserve(Some(&token), &json!({})).await;
    let wrong_type = app.reserve(Some(&token), &json!({ "cart_id": 42 })).await;
    let malformed_id = app
        .reserve(Some(&token), &json!({ "cart_id": "nope" }))
        .await;

    assert_error(not_json, 400, "malformed_json").await;
    assert_error(missing_field, 422, "invalid_body").await;
    assert_error(wrong_type, 422, "invalid_body").await;
    assert_error(malformed_id, 422, "invalid_id").await;
    assert_eq!(app.count_with_status("PENDING").await, 0);
}

#[tokio::test]
async fn reserving_while_the_peers_are_away_answers_503_and_reserves_nothing() {
    let app = spawn_app().await;
    let token = app.token(Uuid::new_v4());

    let resp = app
        .reserve(Some(&token), &json!({ "cart_id": Uuid::new_v4() }))
        .await;

    let body = assert_error(resp, 503, "upstream_unavailable").await;
    assert!(body.get("failed").is_none());
    assert_eq!(app.count_with_status("RESERVED").await, 0);
}

#[tokio::test]
async fn the_owner_reads_their_reservation() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            quantity: 2,
            ..Row::default()
        })
        .await;

    let resp = app.get_reservation(&app.token(user), &id.to_string()).await;

    assert_eq!(resp.status().as_u16(), 200);
    let body = json(resp).await;
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["status"], "RESERVED");
    assert_eq!(body["total_cents"], 1_000);
    assert_eq!(body["items"][0]["quantity"], 2);
    assert_eq!(body["items"][0]["price_cents"], 500);
    assert!(body["expires_at"].is_string());
    let mut keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["expires_at", "id", "items", "status", "total_cents"]);
}

#[tokio::test]
async fn another_users_or_an_unknown_reservation_is_not_found() {
    let app = spawn_app().await;
    let owner = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: owner,
            ..Row::default()
        })
        .await;
    let stranger = app.token(Uuid::new_v4());

    let theirs = app.get_reservation(&stranger, &id.to_string()).await;
    let unknown = app
        .get_reservation(&app.token(owner), &Uuid::new_v4().to_string())
        .await;
    let malformed = app.get_reservation(&app.token(owner), "not-an-id").await;

    assert_error(theirs, 404, "not_found").await;
    assert_error(unknown, 404, "not_found").await;
    assert_error(malformed, 400, "malformed_id").await;
}

#[tokio::test]
async fn reading_a_reservation_needs_a_valid_token() {
    let app = spawn_app().await;
    let id = app.insert(Row::default()).await;

    let resp = app
        .http
        .get(app.url(&format!("/api/reservations/{id}")))
        .send()
        .await
        .expect("GET");

    assert_error(resp, 401, "missing_token").await;
}

use crate::helpers::spawn_app;
use serde_json::Value;
use uuid::Uuid;

#[tokio::test]
async fn the_owner_reads_their_order() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    let id = app.insert_order(reservation_id, user, "CONFIRMED").await;

    let resp = app.get_order(user, &id.to_string()).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["status"], "CONFIRMED");
    assert_eq!(body["reservation_id"], reservation_id.to_string());
    assert_eq!(body["total_cents"], 4200);
}

#[tokio::test]
async fn an_unknown_order_is_not_found() {
    let app = spawn_app().await;

    let resp = app
        .get_order(Uuid::new_v4(), &Uuid::new_v4().to_string())
        .await;

    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn another_users_order_is_not_found() {
    let app = spawn_app().await;
    let id = app
        .insert_order(Uuid::new_v4(), Uuid::new_v4(), "CONFIRMED")
        .await;

    let resp = app.get_order(Uuid::new_v4(), &id.to_string()).await;

    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_malformed_order_id_is_a_bad_request() {
    let app = spawn_app().await;

    let resp = app.get_order(Uuid::new_v4(), "not-an-id").await;

    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "malformed_id");
}

//! Bad input through nginx: every answer is the right 4xx with a JSON `{code, message}` body,
//! and nothing changes.

use crate::helpers::spawn_suite_with;
use crate::shopper::Api;
use common::auth::{now_secs, TokenKeys};
use common::Mode;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Send a raw body with a content type, as a hand-written client would.
async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    token: Option<&str>,
    ctype: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = api
        .client
        .request(method, format!("{}{path}", api.base))
        .header("content-type", ctype)
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn assert_error(case: &str, (status, body): &(u16, Value), want_status: u16, want_code: &str) {
    assert_eq!(*status, want_status, "{case}: {body}");
    assert_eq!(body["code"], want_code, "{case}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: a human message: {body}"
    );
}

async fn bad_input_is_refused_with_the_right_status_and_a_json_error_and_changes_nothing(
    mode: Mode,
) {
    let t = spawn_suite_with(|o| o.mode = mode).await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let other = api.shopper(2).await;
    let token = shopper.token.as_str();
    let product = t.suite.products()[0].id.to_string();
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let items = format!("/api/carts/{cart}/items");
    let json_ct = "application/json";
    let post = |path: String, body: &str| {
        let (api, token, body) = (api.clone(), token.to_string(), body.as_bytes().to_vec());
        async move {
            raw(
                &api,
                Method::POST,
                &path,
                Some(&token),
                "application/json",
                body,
            )
            .await
        }
    };

    // Malformed JSON, wrong types, missing fields, out-of-range quantities.
    assert_error(
        "malformed JSON",
        &post(items.clone(), r#"{"product_id": "#).await,
        400,
        "malformed_json",
    );
    assert_error(
        "wrong types",
        &post(items.clone(), r#"{"product_id": 5, "quantity": "one"}"#).await,
        422,
        "invalid_body",
    );
    assert_error(
        "missing field",
        &post(items.clone(), &json!({"product_id": product}).to_string()).await,
        422,
        "invalid_body",
    );
    for q in [json!(0), json!(-1), json!(1_i64 << 32), json!(1.5)] {
        let body = json!({"product_id": product, "quantity": q}).to_string();
        let answer = post(items.clone(), &body).await;
        assert_eq!(answer.0, 422, "quantity {q}: {}", answer.1);
    }
    // Unknown and malformed ids.
    assert_error(
        "unknown product",
        &post(
            items.clone(),
            &json!({"product_id": Uuid::new_v4(), "quantity": 1}).to_string(),
        )
        .await,
        422,
        "unknown_product",
    );
    assert_error(
        "malformed product id",
        &post(
            items.clone(),
            &json!({"product_id": "p-1", "quantity": 1}).to_string(),
        )
        .await,
        422,
        "invalid_id",
    );
    assert_error(
        "unknown cart",
        &post(
            format!("/api/carts/{}/items", Uuid::new_v4()),
            &json!({"product_id": product, "quantity": 1}).to_string(),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        "malformed cart id",
        &post(
            "/api/carts/not-an-id/items".into(),
            &json!({"product_id": product, "quantity": 1}).to_string(),
        )
        .await,
        400,
        "malformed_id",
    );
    assert_error(
        "reserve unknown cart",
        &post(
            "/api/reservations".into(),
            &json!({"cart_id": Uuid::new_v4()}).to_string(),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        "reserve malformed cart id",
        &post("/api/reservations".into(), r#"{"cart_id": "x"}"#).await,
        422,
        "invalid_id",
    );
    assert_error(
        "pay unknown reservation",
        &post(
            "/api/payments".into(),
            &json!({"reservation_id": Uuid::new_v4()}).to_string(),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        "pay malformed reservation id",
        &post("/api/payments".into(), r#"{"reservation_id": 7}"#).await,
        422,
        "invalid_body",
    );
    let (s, b, _) = shopper
        .get(&format!("/api/reservations/{}", Uuid::new_v4()))
        .await;
    assert_error("unknown reservation", &(s, b), 404, "not_found");
    let (s, b, _) = shopper.get("/api/reservations/zzz").await;
    assert_error("malformed reservation id", &(s, b), 400, "malformed_id");
    let (s, b, _) = shopper
        .get(&format!("/api/orders/{}", Uuid::new_v4()))
        .await;
    assert_error("unknown order", &(s, b), 404, "not_found");
    let (s, b, _) = shopper
        .get(&format!("/api/products/{}", Uuid::new_v4()))
        .await;
    assert_error("unknown product", &(s, b), 404, "not_found");

    // Sizes and content types: over the services' limit, over nginx's 1 MB, not JSON.
    let padded =
        json!({"product_id": product, "quantity": 1, "pad": "x".repeat(20 * 1024)}).to_string();
    assert_error(
        "body over the limit",
        &post(items.clone(), &padded).await,
        413,
        "payload_too_large",
    );
    let huge =
        json!({"product_id": product, "quantity": 1, "pad": "x".repeat(1_100_000)}).to_string();
    assert_error(
        "body over 1 MB",
        &post(items.clone(), &huge).await,
        413,
        "payload_too_large",
    );
    let form = raw(
        &api,
        Method::POST,
        &items,
        Some(token),
        "text/plain",
        b"product_id=1".to_vec(),
    )
    .await;
    assert_error(
        "non-JSON content type",
        &form,
        415,
        "unsupported_media_type",
    );

    // Tokens: missing, malformed, expired, forged.
    let body = json!({"product_id": product, "quantity": 1})
        .to_string()
        .into_bytes();
    let none = raw(&api, Method::POST, &items, None, json_ct, body.clone()).await;
    assert_error("missing token", &none, 401, "missing_token");
    let malformed = raw(
        &api,
        Method::POST,
        &items,
        Some("not.a.jwt"),
        json_ct,
        body.clone(),
    )
    .await;
    assert_error("malformed token", &malformed, 401, "invalid_token");
    let user: Uuid = shopper.user_id.parse().expect("user id");
    let expired = TokenKeys::new(t.suite.token_secret(), 60)
        .issue_with_exp(user, now_secs() - 10)
        .expect("expired token");
    assert_error(
        "expired token",
        &raw(
            &api,
            Method::POST,
            &items,
            Some(&expired),
            json_ct,
            body.clone(),
        )
        .await,
        401,
        "token_expired",
    );
    let forged = TokenKeys::new("not-the-suite-secret", 60)
        .issue(user)
        .expect("forged");
    assert_error(
        "forged token",
        &raw(
            &api,
            Method::POST,
            &items,
            Some(&forged),
            json_ct,
            body.clone(),
        )
        .await,
        401,
        "invalid_token",
    );
    for path in [
        "/api/products",
        "/api/carts",
        "/api/reservations",
        "/api/payments",
    ] {
        let (status, body) = raw(&api, Method::POST, path, None, json_ct, b"{}".to_vec()).await;
        assert!(matches!(status, 401 | 405), "{path}: {status} {body}");
        assert!(body["code"].is_string(), "{path}: {body}");
    }
    let (s, b, _) = api.login("user1", "wrong").await;
    assert_error("wrong password", &(s, b), 401, "invalid_credentials");

    // Another user's cart.
    let (s, b, _) = other.add_item(&cart, &product, 1).await;
    assert_error("another user's cart", &(s, b), 404, "not_found");

    // Nothing changed: the cart still holds one unit, no reservation, order or hold exists,
    // and the stock is untouched.
    let (_, cart_now, _) = shopper.get(&format!("/api/carts/{cart}")).await;
    assert_eq!(
        cart_now["items"],
        json!([{"product_id": product, "quantity": 1}])
    );
    for (service, table) in [
        ("reservation", "reservations"),
        ("order", "orders"),
        ("inventory", "holds"),
        ("payment", "payments"),
    ] {
        let rows: i64 = t
            .db(service)
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(rows, 0, "{table} must be empty");
    }
    let stock: i32 = t
        .db("inventory")
        .await
        .query_one(
            "SELECT available FROM stock WHERE product_id = $1",
            &[&t.suite.products()[0].id],
        )
        .await
        .expect("stock")
        .get(0);
    assert_eq!(stock, t.suite.products()[0].stock);
    t.teardown().await;
}

crate::helpers::in_both_modes!(
    bad_input_is_refused_with_the_right_status_and_a_json_error_and_changes_nothing
);

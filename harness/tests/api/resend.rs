//! Every public POST is safe to send twice, which is what lets nginx pass one whose replica
//! died under it to another replica: the same request again has the first one's effect only.

use crate::helpers::spawn_suite_with;
use crate::shopper::Api;
use common::Mode;
use reqwest::Method;
use serde_json::{json, Value};

async fn every_public_post_sent_twice_has_one_effect(mode: Mode) {
    let t = spawn_suite_with(|o| o.mode = mode).await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();
    let keyed = |path: &str, body: Value, key: &str| {
        let req = api
            .client
            .request(Method::POST, format!("{}{path}", api.base))
            .bearer_auth(&shopper.token)
            .header("idempotency-key", key)
            .json(&body);
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A cart: the same key is the same cart.
    let (s1, cart) = keyed("/api/carts", json!({}), "cart-1").await;
    let (s2, again) = keyed("/api/carts", json!({}), "cart-1").await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(cart["id"], again["id"]);
    let cart = cart["id"].as_str().expect("cart id").to_string();

    // An add: the same key adds once.
    let items = format!("/api/carts/{cart}/items");
    let line = json!({"product_id": product, "quantity": 1});
    for _ in 0..2 {
        let (status, body) = keyed(&items, line.clone(), "add-1").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["items"][0]["quantity"], 1, "{body}");
    }

    // A reservation: the cart is its key; sent again it is the same one, and one unit is held.
    let first = shopper.reserve(&cart).await;
    let second = shopper.reserve(&cart).await;
    assert_eq!(first.0, 201, "{:?}", first.1);
    assert_eq!(second.0, 201, "{:?}", second.1);
    assert_eq!(first.1["id"], second.1["id"]);
    let reservation = first.1["id"].as_str().expect("id").to_string();

    // Paying is keyed by the reservation.
    let paid = shopper.pay(&reservation, None).await;
    let paid_again = shopper.pay(&reservation, None).await;
    assert_eq!(paid.0, 200, "{:?}", paid.1);
    assert_eq!(paid_again.0, 200, "{:?}", paid_again.1);
    assert_eq!(paid.1["order_id"], paid_again.1["order_id"]);

    // One unit sold, one hold and one order, and every invariant holds.
    let report = crate::helpers::drained_report(&t).await;
    assert!(report.ok(), "{report:?}");
    let inventory = t.db("inventory").await;
    let sold: i64 = inventory
        .query_one("SELECT COALESCE(sum(sold), 0)::bigint FROM stock", &[])
        .await
        .expect("stock")
        .get(0);
    assert_eq!(sold, 1);
    let orders: i64 = t
        .db("order")
        .await
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("orders")
        .get(0);
    assert_eq!(orders, 1);
    t.teardown().await;
}

crate::helpers::in_both_modes!(every_public_post_sent_twice_has_one_effect);

//! The checkout journey end to end through nginx, and what a shopper may and may not see.

use crate::helpers::{drained_report, spawn_suite_with};
use crate::shopper::Api;
use common::Mode;

async fn a_shopper_checks_out_through_nginx_and_the_invariants_hold(mode: Mode) {
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.replicas = 2;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();

    let (status, products, _) = shopper.get("/api/products").await;
    assert_eq!(status, 200);
    assert_eq!(products.as_array().map(Vec::len), Some(3));
    let cart = shopper.create_cart().await;
    let (status, cart_body, _) = shopper.add_item(&cart, &product, 1).await;
    assert_eq!(status, 200, "{cart_body}");
    assert_eq!(cart_body["items"][0]["quantity"], 1);
    // The architecture shows in the first answer: the step done (201) or accepted (202).
    let (status, accepted, location) = shopper
        .post("/api/reservations", serde_json::json!({"cart_id": cart}))
        .await;
    let expected = if mode == Mode::Sync { 201 } else { 202 };
    assert_eq!(status, expected, "{accepted}");
    let reservation_id = accepted["id"].as_str().expect("id").to_string();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/reservations/{reservation_id}").as_str())
    );
    let reservation = shopper
        .poll(&format!("/api/reservations/{reservation_id}"), &["PENDING"])
        .await;
    assert_eq!(reservation["status"], "RESERVED");
    let (status, paid, _) = shopper.pay(&reservation_id, Some("key-1")).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "CONFIRMED");
    let order_id = paid["order_id"].as_str().expect("order id").to_string();

    let (status, order, _) = shopper.get(&format!("/api/orders/{order_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["reservation_id"], reservation_id.as_str());
    let price = t.suite.products()[0].price_cents;
    assert_eq!(order["total_cents"], price);
    // In async mode the reservation learns of the sale from its own copy of the event.
    let reservation = shopper
        .poll(
            &format!("/api/reservations/{reservation_id}"),
            &["RESERVED"],
        )
        .await;
    assert_eq!(reservation["status"], "CONFIRMED");
    let (_, product_now, _) = shopper.get(&format!("/api/products/{product}")).await;
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    let row = report
        .products
        .iter()
        .find(|p| p.product_id.to_string() == product)
        .expect("product row");
    assert_eq!((row.sold, row.confirmed_units), (1, 1));
    // The catalog's availability is cached for a moment; it never shows more than is left.
    assert!(product_now["available"].as_i64().expect("available") >= 9);
    t.teardown().await;
}

async fn paying_twice_yields_the_same_order_and_one_charge(mode: Mode) {
    let t = spawn_suite_with(|o| o.mode = mode).await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let (_, reservation, _) = shopper.reserve(&cart).await;
    let reservation_id = reservation["id"].as_str().expect("id").to_string();

    let first = shopper.pay(&reservation_id, Some("same")).await;
    let again_same_key = shopper.pay(&reservation_id, Some("same")).await;
    let again_other_key = shopper.pay(&reservation_id, Some("other")).await;
    let concurrent = futures::future::join_all((0..5).map(|i| {
        let shopper = shopper.clone();
        let reservation_id = reservation_id.clone();
        async move { shopper.pay(&reservation_id, Some(&format!("k{i}"))).await }
    }))
    .await;

    for answer in [&again_same_key, &again_other_key]
        .into_iter()
        .chain(concurrent.iter())
    {
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert_eq!(answer.1["order_id"], first.1["order_id"]);
    }
    let charges: i64 = t
        .db("payment")
        .await
        .query_one("SELECT count(*) FROM provider_charges", &[])
        .await
        .expect("count charges")
        .get(0);
    let orders: i64 = t
        .db("order")
        .await
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("count orders")
        .get(0);
    assert_eq!((orders, charges), (1, 1));
    t.teardown().await;
}

async fn a_user_never_sees_another_users_cart_reservation_or_order(mode: Mode) {
    let t = spawn_suite_with(|o| o.mode = mode).await;
    let api = Api::new(t.suite.base_url());
    let (alice, mallory) = (api.shopper(1).await, api.shopper(2).await);
    let product = t.suite.products()[0].id.to_string();
    let cart = alice.create_cart().await;
    alice.add_item(&cart, &product, 1).await;
    let (_, reservation, _) = alice.reserve(&cart).await;
    let reservation_id = reservation["id"].as_str().expect("id").to_string();
    let (_, paid, _) = alice.pay(&reservation_id, None).await;
    let order_id = paid["order_id"].as_str().expect("order id").to_string();

    let attempts = [
        mallory.get(&format!("/api/carts/{cart}")).await,
        mallory.add_item(&cart, &product, 1).await,
        mallory
            .post("/api/reservations", serde_json::json!({"cart_id": cart}))
            .await,
        mallory
            .get(&format!("/api/reservations/{reservation_id}"))
            .await,
        mallory.pay(&reservation_id, None).await,
        mallory.get(&format!("/api/orders/{order_id}")).await,
    ];

    for (status, body, _) in &attempts {
        assert_eq!(*status, 404, "{body}");
        assert_eq!(body["code"], "not_found");
    }
    let (_, cart_now, _) = alice.get(&format!("/api/carts/{cart}")).await;
    assert_eq!(cart_now["items"][0]["quantity"], 1, "the cart is unchanged");
    t.teardown().await;
}

crate::helpers::in_both_modes!(
    a_shopper_checks_out_through_nginx_and_the_invariants_hold,
    paying_twice_yields_the_same_order_and_one_charge,
    a_user_never_sees_another_users_cart_reservation_or_order
);

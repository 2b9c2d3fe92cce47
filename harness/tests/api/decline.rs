//! A declined payment: 402 with the order id, and the held stock goes back on sale.

use crate::helpers::{drained_report, spawn_suite_with};
use crate::shopper::{Api, Outcome};
use common::Mode;

async fn a_declined_payment_answers_402_and_puts_the_stock_back_on_sale(mode: Mode) {
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.stock = 1;
        o.extra_env
            .push(("PAYMENT_DECLINE_RATE".into(), "1.0".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shopper = api.shopper(1).await;
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let (status, reservation, _) = shopper.reserve(&cart).await;
    assert_eq!(status, 201);
    let reservation_id = reservation["id"].as_str().expect("id").to_string();

    let (status, body, _) = shopper.pay(&reservation_id, None).await;

    assert_eq!(status, 402, "{body}");
    let order_id = body["order_id"]
        .as_str()
        .expect("order_id in the 402")
        .to_string();
    let (_, order, _) = shopper.get(&format!("/api/orders/{order_id}")).await;
    assert_eq!(order["status"], "DECLINED");
    let reservation = shopper
        .poll(
            &format!("/api/reservations/{reservation_id}"),
            &["RESERVED"],
        )
        .await;
    assert_eq!(reservation["status"], "CANCELLED");
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(report.products[0].available, 1, "the unit is back on sale");
    // The single unit is on sale again: another shopper gets it (and is declined too).
    let other = api.shopper(2).await;
    assert!(matches!(
        other.checkout(&product).await,
        Outcome::Declined { .. }
    ));
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(
        (report.products[0].available, report.products[0].sold),
        (1, 0)
    );
    t.teardown().await;
}

crate::helpers::in_both_modes!(a_declined_payment_answers_402_and_puts_the_stock_back_on_sale);

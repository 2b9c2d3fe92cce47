use crate::helpers::{http, json_body, spawn_suite};

#[tokio::test]
async fn nginx_answers_json_404_for_an_unknown_path_and_json_413_for_a_large_body() {
    let t = spawn_suite().await;
    let client = http();

    let r = client
        .get(t.url("/no/such/route"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let body = json_body(r).await;
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["message"], "route not found");

    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = client
        .post(t.url("/api/carts"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("post 2 MB");
    assert_eq!(r.status(), 413);
    assert_eq!(json_body(r).await["code"], "payload_too_large");

    let r = client
        .get(t.url("/nginx-health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    // It names its suite, so a start-up never takes another suite's nginx for its own.
    assert_eq!(
        json_body(r).await["suite"],
        t.suite.state().db_prefix.as_str()
    );

    t.teardown().await;
}

/// `/internal/...` does not exist on the public listener, whatever key comes with it; the
/// internal listener (the services' `UPSTREAM_URL`) serves it, with the key, and nothing else.
#[tokio::test]
async fn internal_routes_are_served_only_on_the_internal_listener() {
    let t = spawn_suite().await;
    let client = http();
    let key = t.suite.internal_key().to_string();
    let product = t.suite.products()[0].id;
    let internal = t.suite.internal_url().to_string();
    let paths = [
        format!("/internal/inventory/stock/{product}"),
        "/internal/inventory/stock".to_string(),
        format!("/internal/reservations/{}", uuid::Uuid::nil()),
        format!("/internal/orders/{}", uuid::Uuid::nil()),
    ];
    for path in &paths {
        for with_key in [Some(key.as_str()), Some("guessed"), None] {
            let mut req = client.get(t.url(path));
            if let Some(k) = with_key {
                req = req.header(common::auth::INTERNAL_KEY_HEADER, k);
            }
            let r = req.send().await.expect("public request");
            assert_eq!(r.status(), 404, "public {path} with {with_key:?}");
            assert_eq!(json_body(r).await["message"], "route not found", "{path}");
        }
    }
    let r = client
        .get(format!("{internal}/internal/inventory/stock/{product}"))
        .header(common::auth::INTERNAL_KEY_HEADER, &key)
        .send()
        .await
        .expect("internal request");
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["product_id"], product.to_string());
    // Without the key the service itself hides the route.
    let r = client
        .get(format!("{internal}/internal/inventory/stock/{product}"))
        .send()
        .await
        .expect("internal request");
    assert_eq!(r.status(), 404);
    // The shop's API is not on the internal listener.
    let r = client
        .get(format!("{internal}/api/products"))
        .send()
        .await
        .expect("internal request");
    assert_eq!(r.status(), 404);
    t.teardown().await;
}

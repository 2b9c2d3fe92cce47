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

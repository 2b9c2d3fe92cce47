//! A shopper's side of the public API, through nginx, as k6 drives it: log in, cart, reserve,
//! pay. In async mode a 202 is followed by polling its status URL until a final state, so the
//! same tests read the same outcomes in both modes.

use crate::helpers::http;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

/// Status, JSON body (Null when there is none) and `Location`.
pub type Answer = (u16, Value, Option<String>);

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            client: http(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches nginx");
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body, location)
    }

    pub async fn login(&self, username: &str, password: &str) -> Answer {
        self.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// `user1..user<n>`, logged in concurrently.
    pub async fn shoppers(&self, n: usize) -> Vec<Shopper> {
        futures::future::join_all((1..=n).map(|k| self.shopper(k))).await
    }

    /// Log `user<k>` in with the seeded password.
    pub async fn shopper(&self, k: usize) -> Shopper {
        let (status, body, _) = self.login(&format!("user{k}"), "flashsale").await;
        assert_eq!(status, 200, "login user{k}: {body}");
        Shopper {
            api: self.clone(),
            token: body["token"].as_str().expect("token").to_string(),
            user_id: body["user_id"].as_str().expect("user_id").to_string(),
        }
    }
}

/// Every shopper checks out one unit of `product`, each on a task of its own, so the sale
/// goes on while the test kills or stops replicas.
pub fn spawn_checkouts(
    shoppers: Vec<Shopper>,
    product: &str,
) -> Vec<tokio::task::JoinHandle<Outcome>> {
    shoppers
        .into_iter()
        .map(|s| {
            let product = product.to_string();
            tokio::spawn(async move { s.checkout(&product).await })
        })
        .collect()
}

#[derive(Clone)]
pub struct Shopper {
    pub api: Api,
    pub token: String,
    pub user_id: String,
}

/// How a checkout ended, as a shopper sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Confirmed {
        order_id: String,
    },
    SoldOut,
    LimitReached,
    Declined {
        order_id: String,
    },
    Expired,
    Failed {
        step: &'static str,
        status: u16,
        body: String,
    },
}

impl Shopper {
    pub async fn get(&self, path: &str) -> Answer {
        self.api
            .call(Method::GET, path, Some(&self.token), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.api
            .call(Method::POST, path, Some(&self.token), Some(body))
            .await
    }

    pub async fn create_cart(&self) -> String {
        let (status, body, _) = self.post("/api/carts", json!({})).await;
        assert_eq!(status, 201, "create cart: {body}");
        body["id"].as_str().expect("cart id").to_string()
    }

    pub async fn add_item(&self, cart: &str, product: &str, quantity: i64) -> Answer {
        self.post(
            &format!("/api/carts/{cart}/items"),
            json!({"product_id": product, "quantity": quantity}),
        )
        .await
    }

    /// `POST /api/reservations`, then (async mode) poll until the reservation leaves PENDING.
    /// Answers the final status code as sync mode would give it, and the reservation body.
    pub async fn reserve(&self, cart: &str) -> Answer {
        let answer = self
            .post("/api/reservations", json!({"cart_id": cart}))
            .await;
        if answer.0 != 202 {
            return answer;
        }
        let id = answer.1["id"].as_str().expect("reservation id").to_string();
        let body = self
            .poll(&format!("/api/reservations/{id}"), &["PENDING"])
            .await;
        let status = match body["status"].as_str() {
            Some("RESERVED") => 201,
            Some("SOLD_OUT") | Some("LIMIT_REACHED") | Some("EXPIRED") => 409,
            _ => 500,
        };
        (status, body, answer.2)
    }

    /// `POST /api/payments`, then (async mode) poll the order until it leaves PENDING.
    pub async fn pay(&self, reservation: &str, key: Option<&str>) -> Answer {
        let mut req = self
            .api
            .client
            .post(format!("{}/api/payments", self.api.base))
            .bearer_auth(&self.token)
            .json(&json!({"reservation_id": reservation}));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.expect("pay");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 202 {
            return (status, body, None);
        }
        let order_id = body["order_id"].as_str().expect("order id").to_string();
        let order = self
            .poll(&format!("/api/orders/{order_id}"), &["PENDING"])
            .await;
        let status = match order["status"].as_str() {
            Some("CONFIRMED") => 200,
            Some("DECLINED") => 402,
            Some("CANCELLED") => 409,
            _ => 500,
        };
        (
            status,
            json!({"order_id": order_id, "status": order["status"]}),
            None,
        )
    }

    /// GET `path` until its `status` is not one of `waiting` (at most 30 s).
    pub async fn poll(&self, path: &str, waiting: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(10);
        loop {
            let (status, body, _) = self.get(path).await;
            assert_eq!(status, 200, "poll {path}: {body}");
            let current = body["status"].as_str().unwrap_or_default();
            if !waiting.contains(&current) || Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// The whole journey for one unit of `product`.
    pub async fn checkout(&self, product: &str) -> Outcome {
        let cart = self.create_cart().await;
        let (status, body, _) = self.get(&format!("/api/products/{product}")).await;
        if status != 200 {
            return failed("product", status, body);
        }
        let (status, body, _) = self.add_item(&cart, product, 1).await;
        if status != 200 {
            return failed("add item", status, body);
        }
        let (status, body, _) = self.reserve(&cart).await;
        match (status, body["code"].as_str(), body["status"].as_str()) {
            (201, _, _) => {}
            (409, Some("sold_out"), _) | (409, _, Some("SOLD_OUT")) => return Outcome::SoldOut,
            (409, Some("limit_reached"), _) | (409, _, Some("LIMIT_REACHED")) => {
                return Outcome::LimitReached
            }
            _ => return failed("reserve", status, body),
        }
        let reservation = body["id"].as_str().expect("reservation id").to_string();
        let (status, body, _) = self.pay(&reservation, None).await;
        let order_id = body["order_id"].as_str().unwrap_or_default().to_string();
        match status {
            200 => Outcome::Confirmed { order_id },
            402 => Outcome::Declined { order_id },
            409 => Outcome::Expired,
            _ => failed("pay", status, body),
        }
    }
}

fn failed(step: &'static str, status: u16, body: Value) -> Outcome {
    Outcome::Failed {
        step,
        status,
        body: body.to_string(),
    }
}

//! The gateway's vocabulary: credentials, products, carts. Raw request bodies are parsed into
//! these types at the edge, so an invalid username or quantity never reaches storage.

mod password;

pub use password::{HashCost, PasswordChecker};

use common::domain::{parse_body_id, Quantity};
use common::ApiError;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A request body that must be a JSON object. serde's derived structs also accept a JSON
/// array, filled field by field in order, so `["alice", "pw"]` would log in; wrapping the
/// type in this refuses anything but an object, as a wrong type (422 `invalid_body`).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        T::deserialize(serde_json::Value::Object(object))
            .map(JsonObject)
            .map_err(serde::de::Error::custom)
    }
}

/// `POST /api/auth/login` as sent. Wrong JSON types are refused by the JSON extractor (422).
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Credentials whose lengths are acceptable. The password is never logged or printed.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub const MAX_USERNAME_CHARS: usize = 64;
    pub const MAX_PASSWORD_CHARS: usize = 256;

    pub fn parse(req: LoginRequest) -> Result<Self, ApiError> {
        let username_chars = req.username.chars().count();
        if !(1..=Self::MAX_USERNAME_CHARS).contains(&username_chars) {
            return Err(ApiError::unprocessable(
                "invalid_username",
                format!(
                    "username must be 1 to {} characters",
                    Self::MAX_USERNAME_CHARS
                ),
            ));
        }
        // An upper bound matters here: hashing cost grows with the password's length.
        let password_chars = req.password.chars().count();
        if !(1..=Self::MAX_PASSWORD_CHARS).contains(&password_chars) {
            return Err(ApiError::unprocessable(
                "invalid_password",
                format!(
                    "password must be 1 to {} characters",
                    Self::MAX_PASSWORD_CHARS
                ),
            ));
        }
        Ok(Self {
            username: req.username,
            password: req.password,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct LoginAnswer {
    pub token: String,
    pub user_id: Uuid,
}

/// A row of the `products` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub price_cents: i64,
}

/// A product as the public catalog shows it.
#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub available: i64,
}

impl ProductView {
    pub fn new(product: Product, available: i64) -> Self {
        Self {
            id: product.id,
            name: product.name,
            price_cents: product.price_cents,
            available,
        }
    }
}

/// `POST /api/carts/{id}/items` as sent. `quantity` is taken as any JSON number so that
/// 1.5 or 2^32 is answered `invalid_quantity`, while a string is a wrong type (`invalid_body`).
#[derive(Debug, Deserialize)]
pub struct AddItemRequest {
    pub product_id: String,
    pub quantity: serde_json::Number,
}

/// A validated cart line to add.
#[derive(Debug, Clone, Copy)]
pub struct NewLine {
    pub product_id: Uuid,
    pub quantity: Quantity,
}

impl NewLine {
    pub fn parse(req: &AddItemRequest) -> Result<Self, ApiError> {
        let product_id = parse_body_id(&req.product_id, "product_id")?;
        let quantity = match req.quantity.as_i64() {
            Some(raw) => Quantity::parse(raw)?,
            // A fraction, or an integer beyond 64 bits: out of range all the same.
            None => Quantity::parse(0)?,
        };
        Ok(Self {
            product_id,
            quantity,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// A cart as stored: its owner and its lines, sorted by product id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<CartLine>,
}

/// A cart as its owner sees it.
#[derive(Debug, Serialize)]
pub struct CartView {
    pub id: Uuid,
    pub items: Vec<CartLine>,
}

impl From<Cart> for CartView {
    fn from(cart: Cart) -> Self {
        Self {
            id: cart.id,
            items: cart.items,
        }
    }
}

/// A cart line with its unit price, for the reservation service.
#[derive(Debug, Serialize, Deserialize)]
pub struct PricedLine {
    pub product_id: Uuid,
    pub quantity: i32,
    pub price_cents: i64,
}

/// `GET /internal/gateway/carts/{id}`: what a reservation is made of.
#[derive(Debug, Serialize, Deserialize)]
pub struct PricedCart {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<PricedLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(username: &str, password: &str) -> LoginRequest {
        LoginRequest {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn a_json_object_body_refuses_an_array_with_the_same_fields() {
        let ok: Result<JsonObject<LoginRequest>, _> =
            serde_json::from_str(r#"{"username": "u", "password": "p"}"#);
        let array: Result<JsonObject<LoginRequest>, _> = serde_json::from_str(r#"["u", "p"]"#);
        let wrong_type: Result<JsonObject<LoginRequest>, _> =
            serde_json::from_str(r#"{"username": 1, "password": "p"}"#);
        assert_eq!(ok.expect("object").0.username, "u");
        assert!(array.expect_err("array accepted").is_data());
        assert!(wrong_type.expect_err("number accepted").is_data());
    }

    #[test]
    fn credentials_accept_lengths_in_range_counted_in_characters() {
        assert!(Credentials::parse(login("u", "p")).is_ok());
        assert!(Credentials::parse(login(&"é".repeat(64), &"é".repeat(256))).is_ok());
    }

    #[test]
    fn credentials_refuse_empty_or_overlong_fields() {
        for (u, p, code) in [
            ("", "p", "invalid_username"),
            (&"u".repeat(65) as &str, "p", "invalid_username"),
            ("u", "", "invalid_password"),
            ("u", &"p".repeat(257) as &str, "invalid_password"),
        ] {
            let err = Credentials::parse(login(u, p)).err().expect("accepted");
            assert_eq!(err.code(), code);
        }
    }

    fn add(product_id: &str, quantity: &str) -> AddItemRequest {
        serde_json::from_str(&format!(
            r#"{{"product_id": "{product_id}", "quantity": {quantity}}}"#
        ))
        .expect("valid JSON")
    }

    #[test]
    fn a_new_line_needs_a_well_formed_id_and_a_quantity_in_range() {
        let id = Uuid::new_v4().to_string();
        assert_eq!(
            NewLine::parse(&add(&id, "3")).expect("ok").quantity.get(),
            3
        );
        for bad in [
            "0",
            "-1",
            "1.5",
            "4294967296",
            "100000000000000000000",
            "10001",
        ] {
            assert_eq!(
                NewLine::parse(&add(&id, bad)).expect_err(bad).code(),
                "invalid_quantity",
                "{bad}"
            );
        }
        assert_eq!(
            NewLine::parse(&add("nope", "1")).expect_err("ok").code(),
            "invalid_id"
        );
    }
}

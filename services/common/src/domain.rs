//! Validated values shared by every service. An invalid quantity or id cannot exist past the
//! edge of a service: handlers parse raw input into these types first.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Units of one product in a cart line or a hold: 1 ..= [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i32")]
pub struct Quantity(i32);

impl Quantity {
    /// Largest quantity of one product in one cart line. Far above any flash-sale stock, and
    /// small enough that sums over a cart never overflow 32 bits.
    pub const MAX: i32 = 10_000;

    pub fn parse(raw: i64) -> Result<Self, ApiError> {
        if (1..=i64::from(Self::MAX)).contains(&raw) {
            Ok(Self(raw as i32))
        } else {
            Err(ApiError::unprocessable(
                "invalid_quantity",
                format!("quantity must be an integer from 1 to {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        Self::parse(raw).map_err(|e| e.to_string())
    }
}

impl From<Quantity> for i32 {
    fn from(q: Quantity) -> i32 {
        q.0
    }
}

/// Parse an id taken from a URL path: a malformed one is a 400.
pub fn parse_path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::bad_request(
            "malformed_id",
            format!("{what} id {raw:?} is not a well-formed id"),
        )
    })
}

/// Parse an id taken from a JSON body: a malformed one is an invalid value, 422.
pub fn parse_body_id(raw: &str, field: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::unprocessable(
            "invalid_id",
            format!("{field} {raw:?} is not a well-formed id"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_accepts_its_range_and_nothing_else() {
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(i64::from(Quantity::MAX)).is_ok());
        for bad in [
            0,
            -1,
            i64::from(Quantity::MAX) + 1,
            i64::from(i32::MAX) + 1,
            i64::MIN,
        ] {
            assert_eq!(
                Quantity::parse(bad).expect_err("accepted").code(),
                "invalid_quantity",
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_ids_are_told_apart_by_where_they_came_from() {
        assert_eq!(
            parse_path_id("nope", "cart").expect_err("ok").code(),
            "malformed_id"
        );
        assert_eq!(
            parse_body_id("nope", "cart_id").expect_err("ok").code(),
            "invalid_id"
        );
        assert!(parse_path_id(&Uuid::new_v4().to_string(), "cart").is_ok());
    }
}

//! The inventory's vocabulary: what a hold asks for and how it can end.

use common::domain::Quantity;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HoldItem {
    pub product_id: Uuid,
    pub quantity: Quantity,
}

/// `POST /internal/inventory/holds`: hold every item for one reservation, all or nothing.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HoldRequest {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<HoldItem>,
}

/// State of a reservation's holds as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldState {
    Held,
    Sold,
    Released,
}

impl HoldState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HELD" => Some(Self::Held),
            "SOLD" => Some(Self::Sold),
            "RELEASED" => Some(Self::Released),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Sold => "SOLD",
            Self::Released => "RELEASED",
        }
    }
}

/// What a hold attempt ended with. Rejections are business answers, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Stock is held (or was already held, or already sold, for this reservation).
    Held(HoldState),
    /// Not enough stock left for one of the items.
    SoldOut,
    /// The user would exceed the per-user limit of one of the items.
    LimitReached,
    /// The reservation was released before this hold arrived: nothing is held.
    AlreadyReleased,
    /// One of the products does not exist.
    UnknownProduct(Uuid),
}

impl HoldOutcome {
    /// Why nothing was held, in the words both transports use; `None` when it was held.
    pub fn rejection(&self) -> Option<common::events::Rejection> {
        use common::events::Rejection;
        match self {
            Self::Held(_) => None,
            Self::SoldOut => Some(Rejection::SoldOut),
            Self::LimitReached => Some(Rejection::LimitReached),
            Self::AlreadyReleased => Some(Rejection::HoldReleased),
            Self::UnknownProduct(_) => Some(Rejection::UnknownProduct),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldAnswer {
    pub reservation_id: Uuid,
    pub status: HoldState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockLevel {
    pub product_id: Uuid,
    pub initial: i32,
    pub available: i32,
    pub reserved: i32,
    pub sold: i32,
    pub per_user_limit: i32,
}

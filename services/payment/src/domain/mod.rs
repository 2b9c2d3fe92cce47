//! The payment's vocabulary: what a charge asks for, the states of a payment, and the
//! fictitious provider that decides.

pub mod charge;
pub mod provider;
pub mod refund;

use common::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// State of a payment. `PENDING` until the provider's decision is stored, then final; a
/// SUCCEEDED one becomes REFUNDED when its order could not be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Declined,
    Refunded,
}

impl PaymentStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "SUCCEEDED" => Some(Self::Succeeded),
            "DECLINED" => Some(Self::Declined),
            "REFUNDED" => Some(Self::Refunded),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Declined => "DECLINED",
            Self::Refunded => "REFUNDED",
        }
    }

    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// What the provider decided for one charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Declined,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SUCCEEDED" => Some(Self::Succeeded),
            "DECLINED" => Some(Self::Declined),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Declined => "DECLINED",
        }
    }
}

impl From<Outcome> for PaymentStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => Self::Succeeded,
            Outcome::Declined => Self::Declined,
        }
    }
}

/// An amount of money in cents that may be charged: zero or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountCents(i64);

impl AmountCents {
    pub fn parse(raw: i64) -> Result<Self, ApiError> {
        if raw >= 0 {
            Ok(Self(raw))
        } else {
            Err(ApiError::unprocessable(
                "invalid_amount",
                "amount_cents must be zero or more",
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// `POST /internal/payments/charges`: charge the order once, whatever the number of calls.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChargeRequest {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount_cents: i64,
}

/// `POST /internal/payments/refunds`: give the order's charge back, once.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RefundRequest {
    pub order_id: Uuid,
}

/// The answer of a charge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeAnswer {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub status: PaymentStatus,
}

/// A stored payment, as `GET /internal/payments/by-order/{order_id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount_cents: i64,
    pub status: PaymentStatus,
}

impl Payment {
    pub fn answer(&self) -> ChargeAnswer {
        ChargeAnswer {
            payment_id: self.payment_id,
            order_id: self.order_id,
            status: self.status,
        }
    }
}

//! The payment's tables: `payments` (one per order), `provider_charges` (the fictitious
//! provider's ledger), and in async mode `outbox` and `inbox` (`common::messaging`).

pub mod migrations {
    refinery::embed_migrations!("migrations");

    /// This service's migrations with the shared outbox and inbox (`common::messaging`) as
    /// V2, the relay's lease as V3 and the events' trace as V5.
    pub fn runner() -> refinery::Runner {
        common::messaging::outbox::with_migrations(
            migrations::runner(),
            common::messaging::outbox::SharedVersions {
                messaging: 2,
                claim: 3,
                trace: 5,
            },
        )
    }
}

pub mod ledger;
pub mod payments;

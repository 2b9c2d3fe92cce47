//! The reservation's tables: `reservations`, and in async mode `outbox` and `inbox`.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    /// This service's migrations with the shared outbox and inbox (`common::messaging`) as
    /// V2, the relay's lease as V3 and the events' trace as V4.
    pub fn runner() -> refinery::Runner {
        common::messaging::outbox::with_migrations(
            migrations::runner(),
            common::messaging::outbox::SharedVersions {
                messaging: 2,
                claim: 3,
                trace: 4,
            },
        )
    }
}

pub mod reservations;

//! The reservation's tables: `reservations`, and in async mode `outbox` and `inbox`.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    /// This service's migrations with the shared outbox and inbox (`common::messaging`) as
    /// V2 and the relay's lease as V3.
    pub fn runner() -> refinery::Runner {
        common::messaging::outbox::with_migrations(migrations::runner(), 2, 3)
    }
}

pub mod reservations;

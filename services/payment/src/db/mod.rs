//! The payment's tables: `payments` (one per order), `provider_charges` (the fictitious
//! provider's ledger), and in async mode `outbox` and `inbox` (`V2__messaging.sql`).

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod ledger;
pub mod payments;

#[cfg(test)]
mod tests {
    #[test]
    fn the_messaging_migration_is_the_shared_outbox_and_inbox() {
        assert_eq!(
            include_str!("../../migrations/V2__messaging.sql").trim(),
            common::messaging::outbox::MIGRATION_SQL.trim()
        );
    }

    #[test]
    fn the_outbox_claim_migration_is_the_shared_one() {
        assert_eq!(
            include_str!("../../migrations/V3__outbox_claim.sql").trim(),
            common::messaging::outbox::CLAIM_MIGRATION_SQL.trim()
        );
    }
}

//! The payment's tables: `payments` (one per order) and `provider_charges` (the fictitious
//! provider's ledger).

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod ledger;
pub mod payments;

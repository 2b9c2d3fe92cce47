//! The inventory's tables: `stock`, `holds`, `released_reservations`, `user_units`.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod stock;

//! The reservation's one table, `reservations`.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod reservations;

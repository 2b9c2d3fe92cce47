//! The order's table: `orders`.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod orders;

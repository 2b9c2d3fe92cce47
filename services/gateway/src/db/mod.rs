//! The gateway's tables: `users`, `products`. Carts are not here: they live only in Redis.

pub mod migrations {
    refinery::embed_migrations!("migrations");

    pub fn runner() -> refinery::Runner {
        migrations::runner()
    }
}

pub mod products;
pub mod users;

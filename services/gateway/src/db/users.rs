//! Users: looked up by name at login.

use common::db::Prepared;
use common::ApiResult;
use deadpool_postgres::Pool;
use uuid::Uuid;

/// What login needs of a user.
pub struct StoredUser {
    pub id: Uuid,
    pub password_hash: String,
}

pub async fn by_username(pool: &Pool, username: &str) -> ApiResult<Option<StoredUser>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            "SELECT id, password_hash FROM users WHERE username = $1",
            &[&username],
        )
        .await?;
    Ok(row.map(|r| StoredUser {
        id: r.get(0),
        password_hash: r.get(1),
    }))
}

//! Settings every worker of one store shares, such as the secret that signs callback URLs:
//! made once by the first process that needs it, read by every other.

use crate::store::Fail;
use crate::{Error, Store};

const INSERT_IF_ABSENT: &str =
    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const SELECT: &str = "SELECT value FROM settings WHERE name = $1";

impl Store {
    /// The shared setting `name`: `value` if it had none (the first writer wins, also when
    /// several workers start at once), else what it already holds.
    ///
    /// # Errors
    ///
    /// When the database cannot be written or read.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, Error> {
        let outcome: Result<String, Fail> = on_backend!(self, |pool| async {
            sqlx::query(INSERT_IF_ABSENT)
                .bind(name)
                .bind(value)
                .execute(pool)
                .await?;
            let stored: String = sqlx::query_scalar(SELECT)
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok(stored)
        }
        .await);
        outcome.map_err(|f| self.fail("reading a shared setting", f))
    }
}

//! Reading stored rows into the store's types, the same way on both backends: the four column
//! types the schema uses, and the names and JSON that a newer encore might write differently.

use std::str::FromStr;

use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::{Error, ErrorKind};

/// A row of either backend, read by column name.
pub(crate) trait StoreRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! impl_store_row {
    ($($row:ty),+) => {$(
        impl StoreRow for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
        }
    )+};
}

impl_store_row!(SqliteRow, PgRow);

/// A stored name (status, step, state, origin) this encore does not know: written by a newer
/// one, or by hand.
pub(crate) fn parse_name<T>(
    value: &str,
    what: &str,
    whose: &dyn std::fmt::Display,
) -> Result<T, Error>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value.parse().map_err(|e| {
        Error::new(
            ErrorKind::Incompatible,
            format!("reading {whose}: unknown {what} {value:?} (written by a newer encore?)"),
        )
        .with_source(e)
    })
}

/// Stored JSON text as a value.
pub(crate) fn parse_json<T: DeserializeOwned>(
    text: &str,
    what: &str,
    whose: &dyn std::fmt::Display,
) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorKind::Incompatible,
            format!("reading {whose}: its {what} is not the JSON encore writes"),
        )
        .with_source(e)
    })
}

/// Optional stored JSON text as a value.
pub(crate) fn parse_opt_json<T: DeserializeOwned>(
    text: Option<String>,
    what: &str,
    whose: &dyn std::fmt::Display,
) -> Result<Option<T>, Error> {
    text.map(|t| parse_json(&t, what, whose)).transpose()
}

/// A value as stored JSON text.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // The store's own types and `serde_json::Value` always serialize.
    serde_json::to_string(value).expect("serializable value")
}

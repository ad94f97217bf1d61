//! The ids the store makes: UUIDv7, stored as lowercase hyphenated text, so that their text
//! order is their creation order (to the millisecond, and within one process beyond it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Error, ErrorKind};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id (UUIDv7: time-ordered).
            pub fn generate() -> $name {
                $name(Uuid::now_v7())
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses a UUID in any of its text forms.
            fn from_str(s: &str) -> Result<$name, Error> {
                Uuid::parse_str(s).map($name).map_err(|e| {
                    let shown: String = s.chars().take(64).collect();
                    Error::new(
                        ErrorKind::Invalid,
                        format!(concat!("invalid ", $what, " {:?}: expected a uuid"), shown),
                    )
                    .with_source(e)
                })
            }
        }
    };
}

uuid_id!(
    /// A job's id.
    JobId,
    "job id"
);
uuid_id!(
    /// A received callback's id.
    CallbackId,
    "callback id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_round_trip() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        let err = "not-a-uuid".parse::<JobId>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(
            err.to_string().starts_with("invalid job id \"not-a-uuid\""),
            "{err}"
        );
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::Value::from(a.to_string())
        );
    }
}

//! Throwaway PostgreSQL databases: one per measurement, created on the server at
//! `ENCORE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, the test
//! server) and dropped afterwards, so no measurement sees another's rows.

use anyhow::Context as _;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// The administrative connection URL.
pub fn admin_url() -> String {
    std::env::var("ENCORE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists until [`TempDatabase::drop_now`].
#[derive(Debug)]
pub struct TempDatabase {
    name: String,
    /// Its connection URL.
    pub url: String,
}

impl TempDatabase {
    /// Creates `encore_bench_<what>_<pid>` (dropping a leftover of the same name first).
    pub async fn create(what: &str) -> anyhow::Result<TempDatabase> {
        let admin = admin_url();
        let name = format!("encore_bench_{what}_{}", std::process::id());
        let mut conn = PgConnection::connect(&admin)
            .await
            .with_context(|| format!("could not reach PostgreSQL at {}", redact(&admin)))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let base = admin.split('?').next().unwrap_or(&admin);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        Ok(TempDatabase {
            url: format!("{server}/{name}"),
            name,
        })
    }

    /// Drops it (closing anything still connected).
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&admin_url()).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or(user);
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

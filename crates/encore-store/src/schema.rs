//! The schema: the migrations in `migrations/` (embedded at build time, one set for both
//! backends), the check that a database is encore's before anything is written to it, and
//! sqlx's migrator that brings it up to date.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use crate::store::db_error;
use crate::target::Target;
use crate::{Error, ErrorKind};

/// The schema version this encore writes: the version of the last migration it knows. A
/// database migrated past it was written by a newer encore and is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// sqlx's bookkeeping table.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// One file of `migrations/`, named `{version:04}_{description}.sql`.
pub(crate) struct EmbeddedMigration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order. A test checks this list against the `migrations/` directory.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[
    EmbeddedMigration {
        version: 1,
        description: "jobs",
        sql: include_str!("../migrations/0001_jobs.sql"),
    },
    EmbeddedMigration {
        version: 2,
        description: "settings",
        sql: include_str!("../migrations/0002_settings.sql"),
    },
    EmbeddedMigration {
        version: 3,
        description: "retention",
        sql: include_str!("../migrations/0003_retention.sql"),
    },
];

fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|m| {
            Migration::new(
                m.version,
                Cow::Borrowed(m.description),
                MigrationType::Simple,
                Cow::Borrowed(m.sql),
                false,
            )
        })
        .collect()
}

/// The embedded migrations as a source for sqlx's [`Migrator`].
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Migration>, Box<dyn std::error::Error + Send + Sync>>>
                + Send,
        >,
    > {
        Box::pin(async { Ok(migrations()) })
    }
}

/// A row of sqlx's `_sqlx_migrations`.
pub(crate) struct Applied {
    pub(crate) version: i64,
    pub(crate) checksum: Vec<u8>,
    pub(crate) success: bool,
}

/// What the database holds, judged before anything is written to it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Empty, or encore's at this or an older schema: migrate.
    Migrate,
    /// Refused, with the reason.
    Refuse(String),
}

/// Judges a database by its tables and applied migrations.
pub(crate) fn judge(tables: &[String], applied: &[Applied]) -> Verdict {
    let has_migrations = tables.iter().any(|t| t == MIGRATIONS_TABLE);
    if !has_migrations {
        let mut others: Vec<&str> = tables.iter().map(String::as_str).collect();
        if others.is_empty() {
            return Verdict::Migrate;
        }
        others.sort_unstable();
        let shown = others
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if others.len() > 5 { ", …" } else { "" };
        return Verdict::Refuse(format!(
            "holds other tables ({shown}{more}) and no encore migrations: not an encore database"
        ));
    }
    let known = migrations();
    // Encore's own first migration, with encore's checksum, is what makes the table encore's;
    // another application migrated with sqlx has other versions or other contents.
    let first = &known[0];
    match applied.iter().find(|a| a.version == first.version) {
        Some(a) if a.checksum == first.checksum.as_ref() => {}
        Some(_) => {
            return Verdict::Refuse(format!(
                "its migration {} is not encore's (another application's, or edited by hand): not an encore database",
                first.version
            ));
        }
        None if applied.is_empty() && tables.len() == 1 => return Verdict::Migrate,
        None => {
            return Verdict::Refuse(
                "holds migrations of another application and not encore's: not an encore database"
                    .to_owned(),
            );
        }
    }
    if let Some(newest) = applied.iter().map(|a| a.version).max()
        && newest > SCHEMA_VERSION
    {
        return Verdict::Refuse(format!(
            "was written by a newer encore (schema {newest} > {SCHEMA_VERSION}); upgrade encore to use it"
        ));
    }
    for a in applied {
        if !a.success {
            return Verdict::Refuse(format!(
                "its migration to schema {} did not finish",
                a.version
            ));
        }
        if let Some(m) = known.iter().find(|m| m.version == a.version)
            && a.checksum != m.checksum.as_ref()
        {
            return Verdict::Refuse(format!(
                "its migration {} differs from this encore's (edited by hand?)",
                a.version
            ));
        }
    }
    Verdict::Migrate
}

/// What every migrated database must hold: all of this encore's migrations.
fn is_current(applied: &[Applied]) -> bool {
    migrations().iter().all(|m| {
        applied
            .iter()
            .any(|a| a.version == m.version && a.success && a.checksum == m.checksum.as_ref())
    })
}

fn incompatible(target: &Target, reason: &str) -> Error {
    Error::new(
        ErrorKind::Incompatible,
        format!("opening {target}: the database {reason}; refusing to touch it"),
    )
}

fn migrate_error(target: &Target, err: MigrateError) -> Error {
    match err {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
            db_error(target, "migrating", e)
        }
        other => {
            Error::new(ErrorKind::Incompatible, format!("migrating {target}")).with_source(other)
        }
    }
}

/// Defines `$name(target, conn)`: check there is a schema to create the tables in
/// (`$schema_sql`: PostgreSQL's search_path may name none; SQLite always has `main`), judge the
/// database, migrate it with sqlx's migrator, and accept a concurrent migration by another
/// process (the first open of a new SQLite file by two processes at once).
macro_rules! migrate_fn {
    ($name:ident, $conn:ty, $schema_sql:literal, $tables_sql:literal) => {
        pub(crate) async fn $name(target: &Target, conn: &mut $conn) -> Result<(), Error> {
            let schema: Option<String> = sqlx::query_scalar($schema_sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| db_error(target, "opening", e))?;
            if schema.is_none() {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("opening {target}: its search_path names no existing schema to create the tables in; create it first"),
                ));
            }
            let applied = judge_or_refuse!(target, conn, $tables_sql);
            if is_current(&applied) {
                return Ok(());
            }
            let migrator = Migrator::new(Embedded)
                .await
                .map_err(|e| migrate_error(target, e))?;
            match migrator.run(&mut *conn).await {
                Ok(()) => {
                    tracing::info!(database = %target, schema = SCHEMA_VERSION, "job store migrated");
                    Ok(())
                }
                Err(err) => {
                    let applied = judge_or_refuse!(target, conn, $tables_sql);
                    if is_current(&applied) {
                        Ok(())
                    } else {
                        Err(migrate_error(target, err))
                    }
                }
            }
        }
    };
}

/// Reads the tables and applied migrations, returns the applied ones if the database may be
/// migrated, or returns the refusal from the enclosing function.
macro_rules! judge_or_refuse {
    ($target:expr, $conn:expr, $tables_sql:literal) => {{
        let tables: Vec<String> = sqlx::query_scalar($tables_sql)
            .fetch_all(&mut *$conn)
            .await
            .map_err(|e| db_error($target, "opening", e))?;
        let applied = if tables.iter().any(|t| t == MIGRATIONS_TABLE) {
            let rows: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
                "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&mut *$conn)
            .await
            .map_err(|e| db_error($target, "opening", e))?;
            rows.into_iter()
                .map(|(version, checksum, success)| Applied {
                    version,
                    checksum,
                    success,
                })
                .collect()
        } else {
            Vec::new()
        };
        if let Verdict::Refuse(reason) = judge(&tables, &applied) {
            return Err(incompatible($target, &reason));
        }
        applied
    }};
}

migrate_fn!(
    migrate_sqlite,
    SqliteConnection,
    "SELECT 'main'",
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
);
migrate_fn!(
    migrate_postgres,
    PgConnection,
    "SELECT current_schema()::text",
    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<Applied> {
        migrations()
            .into_iter()
            .map(|m| Applied {
                version: m.version,
                checksum: m.checksum.to_vec(),
                success: true,
            })
            .collect()
    }

    fn tables(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_embedded_list_is_the_migrations_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        let embedded: Vec<(String, String)> = MIGRATIONS
            .iter()
            .map(|m| {
                (
                    format!("{:04}_{}.sql", m.version, m.description),
                    m.sql.to_owned(),
                )
            })
            .collect();
        assert_eq!(files, embedded);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn empty_and_current_databases_are_migrated() {
        assert_eq!(judge(&[], &[]), Verdict::Migrate);
        // sqlx created its table, and the process stopped before the first migration.
        assert_eq!(judge(&tables(&["_sqlx_migrations"]), &[]), Verdict::Migrate);
        let all = tables(&["_sqlx_migrations", "jobs", "job_steps"]);
        assert_eq!(judge(&all, &ours()), Verdict::Migrate);
    }

    #[test]
    fn foreign_newer_and_unfinished_databases_are_refused() {
        let Verdict::Refuse(why) = judge(&tables(&["users", "orders"]), &[]) else {
            panic!("a foreign database was accepted");
        };
        assert_eq!(
            why,
            "holds other tables (orders, users) and no encore migrations: not an encore database"
        );

        let mut newer = ours();
        newer.push(Applied {
            version: SCHEMA_VERSION + 1,
            checksum: vec![1, 2, 3],
            success: true,
        });
        let Verdict::Refuse(why) = judge(&tables(&["_sqlx_migrations", "jobs"]), &newer) else {
            panic!("a newer schema was accepted");
        };
        assert_eq!(
            why,
            format!(
                "was written by a newer encore (schema {} > {SCHEMA_VERSION}); upgrade encore to use it",
                SCHEMA_VERSION + 1
            )
        );

        let foreign = vec![Applied {
            version: 20_240_101_000_000,
            checksum: vec![9],
            success: true,
        }];
        let Verdict::Refuse(why) = judge(&tables(&["_sqlx_migrations", "users"]), &foreign) else {
            panic!("another application's migrations were accepted");
        };
        assert!(why.contains("another application"), "{why}");

        let mut edited = ours();
        edited[0].checksum[0] ^= 1;
        assert!(matches!(
            judge(&tables(&["_sqlx_migrations", "jobs"]), &edited),
            Verdict::Refuse(_)
        ));

        let mut unfinished = ours();
        unfinished[0].success = false;
        assert!(matches!(
            judge(&tables(&["_sqlx_migrations", "jobs"]), &unfinished),
            Verdict::Refuse(_)
        ));
    }
}

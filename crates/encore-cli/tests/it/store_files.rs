//! A job store file that cannot be used — foreign or corrupt bytes, another application's
//! SQLite database, a database written by a newer encore — is named in a clear error (exit 3)
//! and left exactly as it was.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::encore_process;
use crate::job_support::describe;

/// `encore run` (nothing is sent: the store is opened before any call) and `encore jobs list`
/// on `db`: both exit 3 saying `says` and naming the file, which is unchanged.
fn refused(db: &std::path::Path, says: &str) {
    let before = std::fs::read(db).unwrap();
    for args in [
        &[
            "run",
            "--business",
            "a bakery",
            "--name",
            "Haneul",
            "--sim",
            "http://127.0.0.1:9",
        ][..],
        &["jobs", "list"],
    ] {
        let out = encore_process()
            .args(args)
            .arg("--db")
            .arg(db)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", describe(&out));
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&db.display().to_string()),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            std::fs::read(db).unwrap() == before,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    std::fs::write(&db, "these are my notes, not a database\n".repeat(100)).unwrap();
    refused(
        &db,
        "not an SQLite database (foreign or corrupt bytes); refusing to touch it",
    );
}

fn sqlite(db: &std::path::Path, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = SqliteConnectOptions::new()
            .filename(db)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for statement in statements {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    });
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    sqlite(
        &db,
        &["CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)"],
    );
    refused(
        &db,
        "holds other tables (invoices) and no encore migrations",
    );
}

#[test]
fn a_database_from_a_newer_encore_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    // A store this encore made, then a migration it does not know.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = encore_store::Store::open(db.to_str().unwrap())
            .await
            .unwrap();
        store.close().await;
    });
    drop(rt);
    let newer = encore_store::SCHEMA_VERSION + 1;
    sqlite(
        &db,
        &[
            "PRAGMA wal_checkpoint(TRUNCATE)",
            &format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ({newer}, 'from the future', TRUE, X'00', 1)"
            ),
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ],
    );
    refused(&db, "was written by a newer encore (schema ");
}

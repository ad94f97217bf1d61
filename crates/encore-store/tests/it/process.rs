//! Tests across real processes: this test binary runs itself as a child with a role
//! ([`CHILD_ROLE`](crate::support::CHILD_ROLE)). The worker lock between two processes, and
//! storage failures on a real file system: a tiny tmpfs, mounted in a mount namespace of the
//! child's own (`unshare --user --map-root-user --mount`, no privileges needed), that fills up
//! or is remounted read-only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use encore_store::{ErrorKind, Origin, Store};
use serde_json::json;

use crate::support::{all_events, child_command, child_role, describe, queued};

const DB_VAR: &str = "ENCORE_STORE_TEST_DB";
const DIR_VAR: &str = "ENCORE_STORE_TEST_DIR";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const WORKER_LOCK_TEST: &str = "process::a_second_serving_process_is_refused";

#[test]
fn a_second_serving_process_is_refused() {
    match child_role().as_deref() {
        Some("hold-worker-lock") => return hold_worker_lock(),
        Some("try-worker-lock") => return try_worker_lock(),
        _ => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let rt = runtime();
    let store = rt.block_on(Store::open(db.to_str().unwrap())).unwrap();

    let mut holder = child_command(WORKER_LOCK_TEST, "hold-worker-lock")
        .env(DB_VAR, &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let locked = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest prints "test <name> ... " before the child's own line.
        .any(|line| line.ends_with("worker lock taken"));
    assert!(locked, "the first process did not take the lock");

    // A second process is refused, naming the first.
    let second = child_command(WORKER_LOCK_TEST, "try-worker-lock")
        .env(DB_VAR, &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{}", describe(&second));
    let expected = format!(
        "refused: another encore serve (pid {}) is serving {}",
        holder.id(),
        db.display()
    );
    assert!(stdout.contains(&expected), "{}", describe(&second));

    // So is this process; plain writers and readers are not.
    let err = store.lock_worker().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerLocked);
    let job = rt.block_on(queued(&store, Origin::Cli));
    assert_eq!(rt.block_on(store.get_job(job.id)).unwrap().job, job);

    // kill -9: the OS releases the lock; nothing stale is left behind.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let lock = store.lock_worker().expect("the lock after the holder died");
    assert_eq!(
        lock.path(),
        Some(PathBuf::from(format!("{}.serve-lock", db.display())).as_path())
    );
    let again = store.lock_worker().unwrap_err();
    assert_eq!(
        again.kind(),
        ErrorKind::WorkerLocked,
        "exclusive within a process too"
    );
    drop(lock);
    store.lock_worker().expect("released on drop");
}

/// Child: takes the lock, says so, and holds it until killed (or until the parent is gone).
fn hold_worker_lock() {
    let db = std::env::var(DB_VAR).unwrap();
    let rt = runtime();
    let store = rt.block_on(Store::open(&db)).unwrap();
    let _lock = store.lock_worker().unwrap();
    println!("worker lock taken");
    let mut sink = String::new();
    // Blocks until the parent closes stdin by exiting.
    let _ = std::io::stdin().read_line(&mut sink);
}

/// Child: tries to take the lock and reports the refusal.
fn try_worker_lock() {
    let db = std::env::var(DB_VAR).unwrap();
    let rt = runtime();
    let store = rt.block_on(Store::open(&db)).unwrap();
    match store.lock_worker() {
        Err(e) if e.kind() == ErrorKind::WorkerLocked => println!("refused: {e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Runs `test` as a child in its own user and mount namespaces, with a tmpfs of `size` at a
/// fresh directory, and asserts that it passed.
fn in_tiny_tmpfs(test: &str, role: &str, size: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} encore-test \"$0\" && exec \"$@\""
        ))
        .arg(dir.path())
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(crate::support::CHILD_ROLE, role)
        .env(DIR_VAR, dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs unshare(1) (util-linux) and user namespaces: {e}")
        });
    assert!(
        output.status.success(),
        "the child in a tmpfs of {size} failed (it needs user namespaces, `unshare -Urm`):\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{role}: passed")),
        "the child did not run its part:\n{}",
        describe(&output)
    );
}

fn tmpfs_dir() -> PathBuf {
    PathBuf::from(std::env::var(DIR_VAR).expect("run by the parent test"))
}

#[test]
fn a_full_disk_writes_nothing_half() {
    if child_role().as_deref() == Some("full-disk") {
        runtime().block_on(full_disk(&tmpfs_dir()));
        println!("full-disk: passed");
        return;
    }
    in_tiny_tmpfs(
        "process::a_full_disk_writes_nothing_half",
        "full-disk",
        "1m",
    );
}

async fn full_disk(dir: &Path) {
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0_u8; 256 * 1024]).unwrap();
    let db = dir.join("jobs.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let job = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("w", Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    let big = "x".repeat(16 * 1024);
    let mut written = 0_i64;
    let err = loop {
        match lease
            .append_event("big", &json!({"n": written, "pad": big}))
            .await
        {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "the 1 MiB file system never filled up");
    };
    println!("full disk after {written} events: {err}");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err:?}");
    assert!(err.to_string().contains(db.to_str().unwrap()), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!err.is_lease_lost());

    // The failed write left nothing: created + claimed + the acknowledged events, and the
    // job's event counter was rolled back with it (the next event follows without a gap).
    let events = all_events(&store, job.id).await;
    assert_eq!(i64::try_from(events.len()).unwrap(), written + 2);
    std::fs::remove_file(&filler).unwrap();
    let seq = lease
        .append_event("after", &json!({"space": "freed"}))
        .await
        .unwrap();
    assert_eq!(seq, written + 3);
}

#[test]
fn a_read_only_file_system_is_refused() {
    if child_role().as_deref() == Some("read-only") {
        runtime().block_on(read_only(&tmpfs_dir()));
        println!("read-only: passed");
        return;
    }
    in_tiny_tmpfs(
        "process::a_read_only_file_system_is_refused",
        "read-only",
        "4m",
    );
}

async fn read_only(dir: &Path) {
    let db = dir.join("jobs.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    queued(&store, Origin::Api).await;
    store.close().await;
    drop(store);
    // SQLite's worker threads close their files just after the last handle is dropped: until
    // then the file system is busy.
    let mut tries = 0;
    loop {
        let remount = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(dir)
            .output()
            .unwrap();
        if remount.status.success() {
            break;
        }
        tries += 1;
        assert!(tries < 100, "{}", describe(&remount));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bytes = std::fs::read(&db).unwrap();

    let err = Store::open(db.to_str().unwrap()).await.unwrap_err();
    println!("read-only: {err}");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err:?}");
    assert!(err.to_string().contains(db.to_str().unwrap()), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(std::fs::read(&db).unwrap() == bytes, "the file changed");
}

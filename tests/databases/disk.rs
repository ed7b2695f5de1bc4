//! Running out of disk, or losing write permission, in the middle of an update: a clear error,
//! and a store that still opens with every committed date intact.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

use cheetah_core::{Cache, Config, Error, StoreError};

use crate::harness::{self, assert_matches, cheetah, cheetah_command, model, wait_for, Db, Kind, Row, FIELDS};

/// The largest file the update may write when the "disk" fills: the backfill's log outgrows it.
const FILE_LIMIT: u64 = 256 << 10;
/// `nobody`, for running the update without root's power to ignore permissions.
const NOBODY: u32 = 65534;

fn seeded(name: &str) -> Option<(Db, Vec<Row>)> {
    let db = Db::open(Kind::Postgres, name)?;
    let rows = db.seeded(160, 200, 13);
    db.config(&FIELDS, "");
    Some((db, rows))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// After the failure: the store opens, holds exactly the committed dates, and the next update
/// and verify succeed.
fn recovers(db: &Db, rows: &[Row]) {
    let config = Config::load(&db.config_path()).expect("config");
    match Cache::builder(config).open() {
        // The failure came before the store held its first record: readers say so plainly.
        Err(Error::Store(StoreError::Missing { .. })) => {}
        Err(e) => panic!("the store opens: {e}"),
        Ok(reader) => {
            let watermark = harness::watermark(db);
            assert_matches(&reader, &FIELDS, &model(rows), Some(watermark.unwrap_or(chrono::NaiveDate::MIN)));
        }
    }
    let (ok, _, stderr) = cheetah(db, &["update", "--no-progress"]);
    assert!(ok, "the next update completes: {stderr}");
    let (ok, stdout, stderr) = cheetah(db, &["verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert_matches(&harness::reader(db), &FIELDS, &model(rows), None);
}

#[test]
fn a_full_disk_mid_update_is_a_clear_error_and_the_store_still_opens() {
    let Some((db, rows)) = seeded("disk_full") else { return };
    let mut command = cheetah_command(&db, &["update", "--no-progress"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // A file-size limit fails writes past it with EFBIG, as a full disk fails them
            // with ENOSPC; ignoring SIGXFSZ turns the signal into that error.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: FILE_LIMIT, rlim_max: FILE_LIMIT };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().expect("run cheetah");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the update cannot finish: {}", text(&output.stdout));
    assert!(stderr.contains("the disk is full") && stderr.contains("free space"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(harness::watermark(&db).is_some(), "dates were committed before the disk filled");
    recovers(&db, &rows);
}

#[test]
fn losing_write_permission_mid_update_is_a_clear_error_and_the_store_still_opens() {
    let Some((db, rows)) = seeded("disk_permission") else { return };
    let store = db.store_path();
    std::fs::create_dir(&store).expect("store dir");
    // Root ignores permissions, so as root the update runs as `nobody`.
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        std::fs::set_permissions(db.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::chown(&store, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    let mut command = cheetah_command(&db, &["update", "--no-progress"]);
    if as_root {
        command.uid(NOBODY).gid(NOBODY);
    }
    let child =
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    // Once the writer holds the store and has written to its log, its directory turns read-only.
    assert!(wait_for(30.0, || has_log(&store)), "the update opened the store");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let output: Output = child.wait_with_output().expect("wait");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the update cannot finish: {}", text(&output.stdout));
    assert!(stderr.contains("permission denied") && stderr.contains("write access"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    recovers(&db, &rows);
}

/// Whether the store has a write-ahead log with a record in it (the store's first record is its
/// format version).
fn has_log(store: &Path) -> bool {
    std::fs::read_dir(store)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".log") && e.metadata().is_ok_and(|m| m.len() > 0))
}

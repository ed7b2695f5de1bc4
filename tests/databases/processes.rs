//! Driving processes for the tests: the `cheetah` binary, a TCP proxy that cuts the source,
//! child test processes and their reports, signals, and waiting for a condition.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::harness::Db;

/// The path of the `cheetah` binary built next to this test.
pub fn cheetah_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let binary = dir.join("cheetah");
    assert!(binary.is_file(), "{} is missing: run the tests with `cargo test --workspace`", binary.display());
    binary
}

/// A TCP proxy to a local server that can be cut, to make the source go down mid-run.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
    /// The connection number at which everything is cut.
    cut_at: Arc<AtomicU64>,
    /// Bytes passed either way so far.
    bytes: Arc<AtomicU64>,
    /// The byte count at which everything is cut.
    cut_at_byte: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(server_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Proxy {
            port,
            cut: Arc::new(AtomicBool::new(false)),
            accepted: Arc::new(AtomicU64::new(0)),
            cut_at: Arc::new(AtomicU64::new(u64::MAX)),
            bytes: Arc::new(AtomicU64::new(0)),
            cut_at_byte: Arc::new(AtomicU64::new(u64::MAX)),
        };
        let (cut, accepted, cut_at) = (proxy.cut.clone(), proxy.accepted.clone(), proxy.cut_at.clone());
        let traffic = Traffic { cut: proxy.cut.clone(), bytes: proxy.bytes.clone(), cut_at: proxy.cut_at_byte.clone() };
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if accepted.fetch_add(1, Ordering::SeqCst) + 1 >= cut_at.load(Ordering::SeqCst) {
                    cut.store(true, Ordering::SeqCst);
                }
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let upstream = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                let (up, down) = (traffic.clone(), traffic.clone());
                std::thread::spawn(move || pump(upstream.0, upstream.1, &up));
                std::thread::spawn(move || pump(server, client, &down));
            }
        });
        proxy
    }

    /// The source goes down when the `n`-th connection from now arrives: that one is refused,
    /// open ones are cut mid-transfer, and later ones are refused.
    pub fn go_down_at_connection(&self, n: u64) {
        self.cut_at.store(self.accepted.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// The source goes down once `n` more bytes have passed, either way: open connections are
    /// cut mid-transfer, and later ones are refused.
    pub fn go_down_after_bytes(&self, n: u64) {
        self.cut_at_byte.store(self.bytes.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Bytes passed either way so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.cut_at_byte.store(u64::MAX, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// What every pumping thread of a proxy shares.
#[derive(Clone)]
struct Traffic {
    cut: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    cut_at: Arc<AtomicU64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, traffic: &Traffic) {
    let cut = &traffic.cut;
    let mut buffer = [0u8; 8192];
    // Wake up regularly to notice a cut even while the peer is silent.
    let _ = from.set_read_timeout(Some(std::time::Duration::from_millis(20)));
    loop {
        if cut.load(Ordering::SeqCst) {
            break;
        }
        let n = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        if traffic.bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64 >= traffic.cut_at.load(Ordering::SeqCst) {
            cut.store(true, Ordering::SeqCst);
            break;
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Runs `cheetah --config <db's config> args...`; returns success, stdout and stderr.
pub fn cheetah(db: &Db, args: &[&str]) -> (bool, String, String) {
    let output = cheetah_command(db, args).output().expect("run cheetah");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `cheetah --config <db's config> args...`, ready to spawn, logging without colours.
pub fn cheetah_command(db: &Db, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(cheetah_binary());
    command.arg("--config").arg(db.config_path()).args(args).env("NO_COLOR", "1");
    command
}

/// Polls `done` every 50 ms until it holds or `seconds` pass; returns whether it held.
pub fn wait_for(seconds: f64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    done()
}

/// Starts `n` processes of this test binary, each running its ignored test `name` (a reader of
/// a process test) with `envs` set.
pub fn spawn_children(name: &str, n: usize, envs: &[(&str, &Path)]) -> Vec<std::process::Child> {
    (0..n)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
                .envs(envs.iter().copied())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a child test")
        })
        .collect()
}

/// Waits for a child of [`spawn_children`] to pass, and returns the JSON it printed after
/// `READER `.
pub fn child_report(child: std::process::Child) -> serde_json::Value {
    let output = child.wait_with_output().expect("child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child test failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("READER ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("no report:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).expect("json")
}

/// Sends `signal` to a child process.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on a pid we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill({}, {signal})", child.id());
}

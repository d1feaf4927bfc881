//! Starting and stopping an example binary from its tests, shared by every
//! example (`#[path = "../../support/run.rs"] mod run;`).
//!
//! An example prints `listening on <base url>` as its first stdout line and
//! shuts down gracefully when its standard input closes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `command`, waits (at most 60 s) for its `listening on` line and
/// returns the child with its base URL; on failure, its stderr.
pub(crate) fn start(mut command: Command) -> Result<(Child, String), String> {
    let mut child = command
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(BufReader::new(stdout).lines().next());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) if line.starts_with("listening on ") => {
            Ok((child, line["listening on ".len()..].to_owned()))
        }
        _ => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Closes stdin (graceful stop) and waits at most 30 s for exit status 0.
pub(crate) fn stop(mut child: Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the example did not stop within 30 s");
}

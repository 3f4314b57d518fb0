//! The `mimi-hub` binary on missing state (issue 17, fault D): a missing or empty database
//! beside an existing hub key, or a database without its hub key, is refused at start with
//! one line, and the database file is not created; a new provider starts only when neither
//! exists.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::world::{A, name};

/// Write a provider configuration with redb storage in `dir`.
fn configure(dir: &Path) -> std::path::PathBuf {
    let ca = mimi_transport::pki::CertificateAuthority::generate("mimi test CA").unwrap();
    let (ca_cert, _) = ca.write_pem_files(dir, "ca").unwrap();
    let (cert, key) = ca
        .issue(&name(A))
        .unwrap()
        .write_pem_files(dir, "server")
        .unwrap();
    let config = dir.join("provider.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"{A}\"\nlisten = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\n\
             certificate = {cert:?}\nprivate_key = {key:?}\nca = {ca_cert:?}\n\
             storage = \"a.redb\"\nhub_key = \"a.hub-key\"\n"
        ),
    )
    .unwrap();
    config
}

/// Start the binary; it must print its listening line (its state is written by then);
/// then kill it (this child only).
fn start_and_stop(config: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mimi-hub"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with(&format!("mimi-hub {A} listening")),
        "{line:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Start the binary expecting a refusal: it must exit by itself within a bound, without
/// listening. Its exit is waited for (on a thread of its own), not polled.
fn refused(config: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mimi-hub"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait_with_output());
    });
    let out = match exit.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // Still running: it started instead of refusing. Stop it and say what it said.
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            let out = exit.recv().unwrap().unwrap();
            panic!(
                "mimi-hub started instead of refusing: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    };
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it must not listen");
    out
}

fn one_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mimi-hub:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn a_missing_or_empty_database_beside_a_hub_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = configure(dir.path());
    let db = dir.path().join("a.redb");
    let key = dir.path().join("a.hub-key");
    // Neither exists: a new provider, which then restarts on its own state.
    start_and_stop(&config);
    assert!(db.is_file() && key.is_file());
    start_and_stop(&config);

    // The database is gone: refused, and no new database is created.
    let saved = dir.path().join("saved.redb");
    std::fs::rename(&db, &saved).unwrap();
    let line = one_line(&refused(&config));
    assert!(
        line.contains("a.hub-key") && line.contains("missing or empty"),
        "{line}"
    );
    assert!(!db.exists());
    // An empty file in its place: refused alike.
    std::fs::write(&db, b"").unwrap();
    let line = one_line(&refused(&config));
    assert!(line.contains("missing or empty"), "{line}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

    // The database back but the hub key gone: refused, no new key written.
    std::fs::rename(&saved, &db).unwrap();
    std::fs::remove_file(&key).unwrap();
    let line = one_line(&refused(&config));
    assert!(
        line.contains("hub key") && line.contains("is missing"),
        "{line}"
    );
    assert!(!key.exists());
}

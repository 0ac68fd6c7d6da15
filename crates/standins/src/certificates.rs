//! TLS certificates for tests of real servers on loopback (Redis, PostgreSQL): a CA of the
//! test's own and a server certificate for `127.0.0.1` signed by it, made by the `openssl`
//! command (as an operator would), valid for a day.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files, in the directory they were made in.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate (PEM), for IP address 127.0.0.1.
    pub cert: PathBuf,
    /// The server's private key (PEM, unencrypted).
    pub key: PathBuf,
}

/// Makes the certificates in `dir`; `None` when `openssl` is missing or fails.
pub fn for_loopback(dir: &Path) -> Option<Certificates> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").ok()?;
    let made = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=rag test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
    made.then(|| Certificates {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    })
}

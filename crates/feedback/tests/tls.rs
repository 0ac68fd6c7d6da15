//! PostgreSQL over TLS, as RDS with `rds.force_ssl` requires: a throwaway cluster (initdb and
//! postgres; as the `postgres` user when the test runs as root) whose `pg_hba.conf` admits
//! TLS connections only, with a server certificate for 127.0.0.1 from a CA of the test's own.
//! `sslmode=require` with that CA works; the system's roots and a plain connection are
//! refused, so a connection that worked was encrypted and verified.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rag_feedback::{FeedbackError, FeedbackStore, PostgresFeedbackStore};

struct Cluster {
    port: u16,
    ca: PathBuf,
    server: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGINT to the postmaster is a fast shutdown; runuser may not pass a kill on.
        let pid = std::fs::read_to_string(self._dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|p| p.lines().next().map(str::to_owned));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-INT", &pid]).status();
        }
        let _ = self.server.wait();
    }
}

fn bindir() -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|v| v.path().join("bin"))
        .find(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file());
    found.or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        bin.join("initdb").is_file().then_some(bin)
    })
}

/// Runs `program` as the postgres user when this process is root (initdb and postgres refuse
/// to run as root).
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Cluster {
    fn start() -> Option<Self> {
        let Some(bin) = bindir() else {
            assert!(std::env::var_os("CI").is_none(), "no initdb/postgres found");
            eprintln!("skipped: no initdb/postgres found");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let Some(certificates) = rag_standins::certificates::for_loopback(dir.path()) else {
            assert!(std::env::var_os("CI").is_none(), "openssl is missing");
            eprintln!("skipped: openssl is missing");
            return None;
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let initdb = command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        // TLS only: a plain connection has no entry to match.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = command(&bin.join("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "ssl=on", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", certificates.cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", certificates.key.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "postgres did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            port,
            ca: certificates.ca,
            server,
            _dir: dir,
        })
    }
}

#[tokio::test]
async fn sslmode_require_connects_only_to_a_verified_server() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = |query: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres{query}",
            cluster.port
        )
    };

    // Verified against the CA file: connects (over TLS: nothing else is admitted) and works.
    let store = PostgresFeedbackStore::connect(&url("?sslmode=require"))
        .unwrap()
        .trusting(&cluster.ca)
        .unwrap();
    let summary = store.summary("tenant-a").await.unwrap();
    assert_eq!(summary.answers, 0);

    // The system's roots do not know the test's CA: refused, and the error says why.
    let untrusted = PostgresFeedbackStore::connect(&url("?sslmode=require")).unwrap();
    match untrusted.summary("tenant-a").await {
        Err(FeedbackError::Unavailable(reason)) => {
            assert!(
                reason.contains("certificate") || reason.contains("TLS"),
                "{reason}"
            );
        }
        Err(FeedbackError::Invalid(reason)) => assert!(reason.contains("CA"), "{reason}"),
        other => panic!("connected without a trusted certificate: {other:?}"),
    }

    // Plain: the server admits no unencrypted connection.
    let plain = PostgresFeedbackStore::connect(&url("?sslmode=disable")).unwrap();
    assert!(matches!(
        plain.summary("tenant-a").await,
        Err(FeedbackError::Unavailable(_))
    ));

    // A CA file is only for TLS connections.
    let e = PostgresFeedbackStore::connect(&url(""))
        .unwrap()
        .trusting(&cluster.ca)
        .unwrap_err();
    assert!(e.to_string().contains("sslmode=require"), "{e}");
}

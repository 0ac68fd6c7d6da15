//! `ragctl keys create|list|revoke`: the gateway's API keys file (`gateway.auth.keys_file`).
//! The file keeps each key's SHA-256 only; a new key is printed once, here, and never again.
//! A running gateway re-reads the file within `gateway.auth.reload_interval_ms`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rag_gateway::auth::{KeysFile, Scope, generate_key};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a key, add its hash to the keys file, and print the key (once).
    Create(CreateArgs),
    /// The keys in the file: id, tenant, scopes, domains (never a secret: the file has none).
    List(FileArgs),
    /// Remove a key from the file; the gateway refuses it from its next reading of the file.
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct FileArgs {
    /// The keys file (created when absent).
    #[arg(long, env = "RAG__GATEWAY__AUTH__KEYS_FILE")]
    file: PathBuf,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    file: FileArgs,
    /// A name for the key (in logs and `keys list`), unique in the file.
    #[arg(long)]
    id: String,
    /// The tenant the key stands for.
    #[arg(long)]
    tenant: String,
    /// What the key may do: query, upload, admin (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', required = true)]
    scopes: Vec<ScopeArg>,
    /// The domains the key may use (comma-separated); every domain when absent.
    #[arg(long, value_delimiter = ',')]
    domains: Vec<String>,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    file: FileArgs,
    /// The id of the key to remove.
    #[arg(long)]
    id: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    Query,
    Upload,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Query => Scope::Query,
            ScopeArg::Upload => Scope::Upload,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => create(args),
        KeysCommand::List(args) => list(&args),
        KeysCommand::Revoke(args) => revoke(args),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let mut file = read(&args.file.file)?;
    if file.keys.iter().any(|k| k.id == args.id) {
        bail!(
            "{} already has a key {:?}; revoke it first or pick another id",
            args.file.file.display(),
            args.id
        );
    }
    let scopes = args.scopes.into_iter().map(Scope::from).collect();
    let (secret, entry) = generate_key(&args.id, &args.tenant, scopes, args.domains)?;
    file.keys.push(entry.clone());
    write(&args.file.file, &file)?;
    if args.file.json {
        println!(
            "{}",
            serde_json::json!({ "key": secret, "id": entry.id, "tenant": entry.tenant })
        );
    } else {
        eprintln!(
            "key {:?} for tenant {:?} added to {}; this is the only time it is shown:",
            entry.id,
            entry.tenant,
            args.file.file.display()
        );
        println!("{secret}");
    }
    Ok(())
}

fn list(args: &FileArgs) -> anyhow::Result<()> {
    let file = read(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string(&file.keys)?);
        return Ok(());
    }
    println!("{:<24} {:<20} {:<20} domains", "id", "tenant", "scopes");
    for key in &file.keys {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let domains = if key.domains.is_empty() {
            "(all)".to_owned()
        } else {
            key.domains.join(",")
        };
        println!(
            "{:<24} {:<20} {:<20} {domains}",
            key.id,
            key.tenant,
            scopes.join(",")
        );
    }
    Ok(())
}

fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let mut file = read(&args.file.file)?;
    let before = file.keys.len();
    file.keys.retain(|k| k.id != args.id);
    if file.keys.len() == before {
        bail!("{} has no key {:?}", args.file.file.display(), args.id);
    }
    write(&args.file.file, &file)?;
    if args.file.json {
        println!("{}", serde_json::json!({ "revoked": args.id }));
    } else {
        eprintln!(
            "key {:?} removed from {}",
            args.id,
            args.file.file.display()
        );
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<KeysFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is invalid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the whole file anew through a temporary file and a rename, so a gateway reading it
/// sees the old keys or the new ones; readable by the owner only.
fn write(path: &Path, file: &KeysFile) -> anyhow::Result<()> {
    let text = format!(
        "# API keys of the gateway (gateway.auth.keys_file), managed with `ragctl keys`.\n\
         # Each key is stored as its SHA-256; the keys themselves are not kept anywhere.\n\n{}",
        toml::to_string(file)?
    );
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

//! Bulk loading through the real pipeline: documents go in as uploads do (registered in the
//! catalog, put into the object store, whose event the ingest-worker takes), so a bulk load
//! exercises exactly what production ingestion does. Used by seeding, `ragctl load` and
//! `ragctl eval`, and the bulk-load benchmark.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rag_backends::rag_catalog::{Catalog, DocumentState, NewUpload};
use rag_backends::rag_object_store::{ObjectStore, TENANT_METADATA};
use rag_config::Settings;
use rag_core::ObjectKey;

use crate::LaunchError;

/// One document to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub domain: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// What a load put in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// New or changed documents, now on their way through the pipeline.
    pub uploaded: usize,
    /// Identical to the stored copy: nothing to do.
    pub unchanged: usize,
}

/// How far the pipeline has got with the documents of the tenant.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Waiting for or in the ingest-worker or the embedder.
    pub pending: u64,
    pub indexed: u64,
    pub failed: u64,
}

/// Puts documents of one tenant into the object store and waits for the pipeline.
#[derive(Debug)]
pub struct Loader {
    tenant: String,
    objects: Arc<dyn ObjectStore>,
    catalog: Arc<dyn Catalog>,
    report: LoadReport,
}

fn failed(what: &str) -> impl FnOnce(String) -> LaunchError + '_ {
    move |e| LaunchError::Load(format!("{what}: {e}"))
}

impl Loader {
    /// A loader into the current index generation.
    pub fn new(settings: &Settings) -> Result<Self, LaunchError> {
        let current = rag_backends::generation::current(settings)?;
        Ok(Self {
            tenant: settings.default_tenant.clone(),
            objects: rag_backends::object_store(settings)?,
            catalog: rag_backends::catalog(&current.settings)?,
            report: LoadReport::default(),
        })
    }

    /// Stores `upload` unless the stored copy is identical. The catalog shows it `queued`
    /// until the ingest-worker takes it.
    pub async fn put(&mut self, upload: Upload) -> Result<(), LaunchError> {
        rag_core::validate::name("domain", &upload.domain)
            .and_then(|()| rag_core::validate::file_name("file name", &upload.file_name))
            .map_err(|e| failed(&upload.file_name)(e.message))?;
        let key = ObjectKey::for_upload(&self.tenant, &upload.domain, &upload.file_name);
        let object_key = key.to_key();
        let existing = self
            .objects
            .get(&object_key)
            .await
            .map_err(|e| failed(&object_key)(e.to_string()))?;
        if existing.is_some_and(|o| o.bytes == upload.bytes) {
            self.report.unchanged += 1;
            return Ok(());
        }
        let size_bytes = upload.bytes.len() as u64;
        self.catalog
            .register_upload(NewUpload {
                id: key.document_id,
                tenant: self.tenant.clone(),
                domain: upload.domain,
                title: upload.file_name,
                object_key: object_key.clone(),
                size_bytes,
            })
            .await
            .map_err(|e| failed(&object_key)(e.to_string()))?;
        let metadata = BTreeMap::from([(TENANT_METADATA.to_owned(), self.tenant.clone())]);
        self.objects
            .put(&object_key, upload.bytes, metadata)
            .await
            .map_err(|e| failed(&object_key)(e.to_string()))?;
        self.report.uploaded += 1;
        Ok(())
    }

    pub fn report(&self) -> LoadReport {
        self.report
    }

    pub async fn progress(&self) -> Result<Progress, LaunchError> {
        let counts = self
            .catalog
            .counts(&self.tenant)
            .await
            .map_err(|e| failed("catalog")(e.to_string()))?;
        let count = |state: DocumentState| counts.get(state.as_str()).copied().unwrap_or(0);
        Ok(Progress {
            pending: count(DocumentState::Queued) + count(DocumentState::Processing),
            indexed: count(DocumentState::Indexed),
            failed: count(DocumentState::Failed),
        })
    }

    /// Polls until no document of the tenant is queued or processing, calling `report` with
    /// each reading; returns the last one.
    pub async fn wait(&self, mut report: impl FnMut(&Progress)) -> Result<Progress, LaunchError> {
        loop {
            let progress = self.progress().await?;
            report(&progress);
            if progress.pending == 0 {
                return Ok(progress);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Puts every file under `<dir>/<domain>/` (recursively) for each folder of `dir` that is a
/// configured domain; returns how many folders were skipped as not configured.
pub async fn put_domain_folders(
    loader: &mut Loader,
    settings: &Settings,
    dir: &Path,
) -> Result<usize, LaunchError> {
    let mut skipped = 0;
    let mut domains = std::fs::read_dir(dir)
        .map_err(|e| failed(&dir.display().to_string())(e.to_string()))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect::<Vec<_>>();
    domains.sort_by_key(|e| e.file_name());
    for domain_dir in domains {
        let domain = domain_dir.file_name().to_string_lossy().into_owned();
        if settings.domain(&domain).is_none() {
            tracing::warn!(%domain, "skipping a folder that is not a configured domain");
            skipped += 1;
            continue;
        }
        put_folder(loader, &domain_dir.path(), &domain).await?;
    }
    Ok(skipped)
}

/// Puts every file under `root` (recursively) into `domain`.
pub async fn put_folder(loader: &mut Loader, root: &Path, domain: &str) -> Result<(), LaunchError> {
    let listed = root.to_path_buf();
    let files = tokio::task::spawn_blocking(move || files_under(&listed))
        .await
        .map_err(|e| LaunchError::Load(format!("listing {}: {e}", root.display())))??;
    for file in files {
        let bytes = tokio::fs::read(&file)
            .await
            .map_err(|e| failed(&file.display().to_string())(e.to_string()))?;
        loader
            .put(Upload {
                domain: domain.to_owned(),
                file_name: file_name_below(root, &file),
                bytes,
            })
            .await?;
    }
    Ok(())
}

/// Every regular file under `dir`, recursively, sorted by path; hidden files and folders
/// (`.git`, `.DS_Store`) are left out.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, LaunchError> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| failed(&folder.display().to_string())(e.to_string()))?;
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The file name a document is stored under: its path below `root` with `/` written as
/// `__` (object keys keep one file-name segment), so `runbooks/db/failover.md` and
/// `runbooks/web/failover.md` stay two documents.
pub fn file_name_below(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap_or(file);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("__")
}

/// Puts every document of a BEIR corpus file; returns the corpus id of each stored file
/// name (what a search hit's object key ends with).
pub async fn put_corpus(
    loader: &mut Loader,
    path: &Path,
    domain: &str,
) -> Result<HashMap<String, String>, LaunchError> {
    // BEIR errors name the file and line already.
    let reader =
        rag_eval::beir::CorpusReader::open(path).map_err(|e| LaunchError::Load(e.to_string()))?;
    let mut ids = HashMap::new();
    for document in reader {
        let document = document.map_err(|e| LaunchError::Load(e.to_string()))?;
        let upload = corpus_upload(domain, &document);
        ids.insert(upload.file_name.clone(), document.id);
        loader.put(upload).await?;
    }
    Ok(ids)
}

/// A corpus document as the upload of `<id>.txt`: its title, a blank line, its text.
pub fn corpus_upload(domain: &str, document: &rag_eval::Document) -> Upload {
    Upload {
        domain: domain.to_owned(),
        file_name: format!("{}.txt", document.id.replace(['/', '\\', '\0'], "_")),
        bytes: format!("{}\n\n{}", document.title, document.text).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_files_keep_distinct_names() {
        let root = Path::new("/docs");
        assert_eq!(
            file_name_below(root, Path::new("/docs/runbooks/db/failover.md")),
            "runbooks__db__failover.md"
        );
        assert_eq!(file_name_below(root, Path::new("/docs/a.txt")), "a.txt");
    }

    #[test]
    fn walks_folders_without_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        for file in ["a.md", "b/c/d.txt", ".git/config", ".hidden"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        let names: Vec<String> = files_under(dir.path())
            .unwrap()
            .iter()
            .map(|f| file_name_below(dir.path(), f))
            .collect();
        assert_eq!(names, ["a.md", "b__c__d.txt"]);
    }
}

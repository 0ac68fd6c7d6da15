//! A directory that behaves like an S3 bucket with notifications to a queue.
//!
//! Layout: `<root>/data/<key>` holds the bytes, `<root>/meta/<key>.json` the metadata. Writes
//! go to a temporary file that is renamed into place, so a reader never sees half an object.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rag_core::{now_ms, s3_event};
use rag_proto::ObjectEvent;
use rag_proto::object_event::Kind;
use rag_queue::{Message, Queue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ObjectInfo, ObjectStore, ObjectStoreError, StoredObject};

#[derive(Debug)]
pub struct LocalObjectStore {
    root: PathBuf,
    bucket: String,
    notifications: Arc<dyn Queue>,
    sequence: AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    etag: String,
    size: u64,
    last_modified_ms: i64,
    metadata: BTreeMap<String, String>,
}

impl LocalObjectStore {
    /// A store in `root` that sends its events to `notifications`.
    pub fn open(
        root: &Path,
        bucket: &str,
        notifications: Arc<dyn Queue>,
    ) -> Result<Self, ObjectStoreError> {
        std::fs::create_dir_all(root.join("data"))?;
        std::fs::create_dir_all(root.join("meta"))?;
        Ok(Self {
            root: root.to_path_buf(),
            bucket: bucket.to_owned(),
            notifications,
            sequence: AtomicU64::new(0),
        })
    }

    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf), ObjectStoreError> {
        crate::check_key(key)?;
        let relative = Path::new(key);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(ObjectStoreError::InvalidKey(key.to_owned()));
        }
        Ok((
            self.root.join("data").join(relative),
            self.root.join("meta").join(format!("{key}.json")),
        ))
    }

    /// S3 sequencers order the events of one key; ours are time-based and strictly increasing.
    fn next_sequencer(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{:016X}{:08X}", now_ms(), n & 0xFFFF_FFFF)
    }

    async fn notify(
        &self,
        kind: Kind,
        event_name: &str,
        info: &ObjectInfo,
    ) -> Result<(), ObjectStoreError> {
        let event = ObjectEvent {
            kind: kind.into(),
            event_name: event_name.into(),
            bucket: self.bucket.clone(),
            key: info.key.clone(),
            size: info.size,
            etag: info.etag.clone(),
            sequencer: self.next_sequencer(),
            event_time_ms: now_ms(),
        };
        let message = Message {
            body: s3_event::encode(&[event], "local"),
            attributes: BTreeMap::new(),
        };
        self.notifications
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| ObjectStoreError::Notification(e.to_string()))
    }
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = tokio::fs::File::create(&tmp).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await
}

async fn read_meta(path: &Path) -> Result<Option<Meta>, ObjectStoreError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ObjectStoreError::CorruptMetadata(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalObjectStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectInfo, ObjectStoreError> {
        let (data_path, meta_path) = self.paths(key)?;
        let info = ObjectInfo {
            key: key.to_owned(),
            size: bytes.len() as u64,
            etag: hex::encode(&Sha256::digest(&bytes)[..16]),
            last_modified_ms: now_ms(),
        };
        let meta = Meta {
            etag: info.etag.clone(),
            size: info.size,
            last_modified_ms: info.last_modified_ms,
            metadata,
        };
        let meta_bytes = serde_json::to_vec(&meta)
            .map_err(|e| ObjectStoreError::CorruptMetadata(e.to_string()))?;
        // Metadata first: an object is visible only once its data is renamed into place.
        write_atomically(&meta_path, &meta_bytes).await?;
        write_atomically(&data_path, &bytes).await?;
        self.notify(Kind::Created, "ObjectCreated:Put", &info)
            .await?;
        Ok(info)
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, ObjectStoreError> {
        let (data_path, meta_path) = self.paths(key)?;
        let bytes = match tokio::fs::read(&data_path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = read_meta(&meta_path).await?.unwrap_or(Meta {
            etag: hex::encode(&Sha256::digest(&bytes)[..16]),
            size: bytes.len() as u64,
            last_modified_ms: 0,
            metadata: BTreeMap::new(),
        });
        Ok(Some(StoredObject {
            info: ObjectInfo {
                key: key.to_owned(),
                size: bytes.len() as u64,
                etag: meta.etag,
                last_modified_ms: meta.last_modified_ms,
            },
            bytes,
            metadata: meta.metadata,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        let (data_path, meta_path) = self.paths(key)?;
        let meta = read_meta(&meta_path).await.ok().flatten();
        match tokio::fs::remove_file(&data_path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let _ = tokio::fs::remove_file(&meta_path).await;
        let info = ObjectInfo {
            key: key.to_owned(),
            size: 0,
            etag: meta.map(|m| m.etag).unwrap_or_default(),
            last_modified_ms: now_ms(),
        };
        self.notify(Kind::Removed, "ObjectRemoved:Delete", &info)
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectStoreError> {
        let data_root = self.root.join("data");
        let meta_root = self.root.join("meta");
        let prefix = prefix.to_owned();
        let keys = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let mut keys = Vec::new();
            let mut stack = vec![data_root.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        stack.push(path);
                    } else if let Ok(relative) = path.strip_prefix(&data_root) {
                        let is_tmp = path
                            .extension()
                            .is_some_and(|e| e.to_string_lossy().starts_with("tmp-"));
                        if let (false, Some(key)) = (is_tmp, relative.to_str())
                            && key.starts_with(&prefix)
                        {
                            keys.push(key.to_owned());
                        }
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| ObjectStoreError::Unavailable(e.to_string()))??;
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let meta = read_meta(&meta_root.join(format!("{key}.json"))).await?;
            let size = tokio::fs::metadata(self.root.join("data").join(&key))
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            objects.push(ObjectInfo {
                key,
                size,
                etag: meta.as_ref().map(|m| m.etag.clone()).unwrap_or_default(),
                last_modified_ms: meta.map(|m| m.last_modified_ms).unwrap_or(0),
            });
        }
        Ok(objects)
    }

    async fn health(&self) -> Result<(), ObjectStoreError> {
        tokio::fs::metadata(self.root.join("data"))
            .await
            .map(|_| ())
            .map_err(|e| ObjectStoreError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rag_core::s3_event::{Notification, decode};
    use rag_queue::{QueueOptions, SqliteQueue};

    use super::*;

    async fn store(dir: &Path) -> (LocalObjectStore, Arc<dyn Queue>) {
        let options = QueueOptions {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
            ..QueueOptions::default()
        };
        let queue: Arc<dyn Queue> =
            Arc::new(SqliteQueue::open(&dir.join("q.db"), "documents", options).unwrap());
        (
            LocalObjectStore::open(&dir.join("objects"), "docs", queue.clone()).unwrap(),
            queue,
        )
    }

    async fn next_event(queue: &Arc<dyn Queue>) -> ObjectEvent {
        let mut got = queue.receive(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 1);
        queue.ack(&got[0].receipt).await.unwrap();
        match decode(&got.remove(0).body).unwrap() {
            Notification::Records(mut r) => r.remove(0),
            Notification::Test => panic!("unexpected test event"),
        }
    }

    #[tokio::test]
    async fn put_get_list_delete_emit_s3_events() {
        let dir = tempfile::tempdir().unwrap();
        let (store, queue) = store(dir.path()).await;
        let meta = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
        let key = "uploads/hr/id/Leave policy.md";
        let info = store
            .put(key, b"hello".to_vec(), meta.clone())
            .await
            .unwrap();
        let event = next_event(&queue).await;
        assert_eq!(event.kind(), Kind::Created);
        assert_eq!(event.key, key);
        assert_eq!(event.size, 5);
        assert_eq!(event.etag, info.etag);

        let got = store.get(key).await.unwrap().unwrap();
        assert_eq!(got.bytes, b"hello");
        assert_eq!(got.metadata, meta);
        assert_eq!(
            store.list("uploads/").await.unwrap(),
            vec![ObjectInfo { ..got.info.clone() }]
        );
        assert!(store.list("other/").await.unwrap().is_empty());

        store.delete(key).await.unwrap();
        let removed = next_event(&queue).await;
        assert_eq!(removed.kind(), Kind::Removed);
        assert!(removed.sequencer > event.sequencer);
        assert!(store.get(key).await.unwrap().is_none());
        // Deleting what is not there is not an error and emits nothing.
        store.delete(key).await.unwrap();
        assert!(
            queue
                .receive(1, Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn rejects_keys_that_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _queue) = store(dir.path()).await;
        for key in ["", "../x", "a/../../x", "/etc/passwd", "a/", "a/./b"] {
            assert!(
                matches!(
                    store.put(key, vec![], BTreeMap::new()).await,
                    Err(ObjectStoreError::InvalidKey(_))
                ),
                "{key:?}"
            );
        }
    }
}

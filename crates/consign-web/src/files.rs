//! The file store behind attachments: one `object_store` interface over a
//! local directory (the default) or an S3-compatible bucket.
//!
//! - `file:///var/lib/consign/files` (or `file://./data/files`, relative to
//!   the working directory): files on local disk.
//! - `s3://bucket/optional/prefix`: credentials, region and endpoint come
//!   from the usual `AWS_*` variables (`AWS_ENDPOINT` for S3-compatible
//!   stores such as MinIO; `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
//!
//! Files are only ever served through the authorized download endpoint.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

/// Where attachment bytes live. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl FileStore {
    /// Opens the store a URL names (see the module docs).
    pub fn open(url: &str) -> anyhow::Result<Self> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create the file store directory {dir}"))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("cannot open the file store directory {dir}"))?;
            return Ok(Self { store: Arc::new(store), prefix: Path::default() });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "the file store URL names no bucket: use s3://bucket/prefix");
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .context("cannot configure the S3 file store")?;
            return Ok(Self { store: Arc::new(store), prefix: Path::from(prefix) });
        }
        anyhow::bail!("unsupported file store URL: use file://<dir> or s3://<bucket>/<prefix>")
    }

    fn path(&self, key: &str) -> Path {
        self.prefix.clone().join(key)
    }

    /// Stores bytes under a key.
    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.store.put(&self.path(key), PutPayload::from_bytes(bytes)).await.context("storing a file")?;
        Ok(())
    }

    /// Reads the bytes of a key.
    pub async fn get(&self, key: &str) -> anyhow::Result<Bytes> {
        let object = self.store.get(&self.path(key)).await.context("reading a file")?;
        object.bytes().await.context("reading a file")
    }
}

//! The file store behind attachments: one `object_store` interface over a
//! local directory (the default) or an S3-compatible bucket.
//!
//! - `file:///var/lib/consign/files` (or `file://./data/files`, relative to
//!   the working directory): files on local disk.
//! - `s3://bucket/optional/prefix`: credentials, region and endpoint come
//!   from the usual `AWS_*` variables (`AWS_ENDPOINT` for S3-compatible
//!   stores such as MinIO; `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
//!
//! Files are only ever served through [`file_response`], which checks that
//! the caller may see the file; the API's download endpoint and the pages
//! both answer with it.

use std::sync::Arc;

use anyhow::Context as _;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use consign_db::messages;
use consign_domain::AttachmentId;
use consign_domain::policy::Action;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};

use crate::AppState;
use crate::error::AppResult;
use crate::extract::Caller;

/// Where attachment bytes live. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Bytes buffered before a piece of a file is written out.
    chunk_bytes: usize,
}

impl FileStore {
    /// Opens the store a URL names (see the module docs).
    pub fn open(url: &str) -> anyhow::Result<Self> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create the file store directory {dir}"))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("cannot open the file store directory {dir}"))?;
            return Ok(Self { store: Arc::new(store), prefix: Path::default(), chunk_bytes: LOCAL_CHUNK_BYTES });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "the file store URL names no bucket: use s3://bucket/prefix");
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .context("cannot configure the S3 file store")?;
            return Ok(Self { store: Arc::new(store), prefix: Path::from(prefix), chunk_bytes: S3_CHUNK_BYTES });
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

    /// Starts writing a file under a key piece by piece, so an upload is
    /// never held whole in memory: on local disk in small pieces to a
    /// staging file, on S3 in parts of the smallest size S3 takes.
    /// The file appears under its key only at [`FileWriter::finish`].
    pub async fn writer(&self, key: &str) -> anyhow::Result<FileWriter> {
        let upload = self.store.put_multipart(&self.path(key)).await.context("starting to store a file")?;
        Ok(FileWriter { upload: WriteMultipart::new_with_chunk_size(upload, self.chunk_bytes) })
    }

    /// Deletes the file under a key; a file already gone is no error, so
    /// a clean-up that ran halfway can run again.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error).context("deleting a file")),
        }
    }

    /// Reads the bytes of a key.
    pub async fn get(&self, key: &str) -> anyhow::Result<Bytes> {
        let object = self.store.get(&self.path(key)).await.context("reading a file")?;
        object.bytes().await.context("reading a file")
    }
}

/// Pieces written to local disk: small, so an upload holds little memory.
const LOCAL_CHUNK_BYTES: usize = 256 * 1024;

/// Pieces written to S3: its smallest part (but the last).
const S3_CHUNK_BYTES: usize = 5 * 1024 * 1024;

/// A file being written (see [`FileStore::writer`]). Dropped without
/// [`finish`](Self::finish), nothing appears under its key; call
/// [`abort`](Self::abort) to also remove what was staged.
#[derive(Debug)]
pub struct FileWriter {
    upload: WriteMultipart,
}

impl FileWriter {
    /// Appends bytes, waiting while earlier pieces are still being written.
    pub async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.upload.wait_for_capacity(2).await.context("storing a file")?;
        self.upload.put(bytes);
        Ok(())
    }

    /// Completes the file under its key.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.upload.finish().await.context("storing a file")?;
        Ok(())
    }

    /// Gives up on the file and removes what was staged.
    pub async fn abort(self) {
        if let Err(error) = self.upload.abort().await {
            tracing::warn!(error = %error, "could not remove a partly stored file");
        }
    }
}

/// The file as a download, if the caller may see it: the one way a file
/// is served, by `GET /api/v1/attachments/{id}` and by the staff and
/// customer pages alike (whose callers come from a session cookie or an
/// order token rather than a bearer token).
pub(crate) async fn file_response(state: &AppState, caller: &Caller, id: AttachmentId) -> AppResult<Response> {
    let attachment = messages::attachments::get(&state.db, caller.scope(), id).await?;
    if caller.scope().customer_order().is_none() {
        caller.authorize_brand(Action::ViewCommerce, attachment.brand_id)?;
    }
    let bytes = state.files.get(&attachment.storage_key).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::try_from(attachment.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(&attachment.file_name));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `Content-Disposition` for a download (RFC 6266): an ASCII `filename` for
/// old clients, with anything outside printable ASCII replaced, and the
/// exact name as a percent-encoded UTF-8 `filename*` (RFC 8187). Every byte
/// is then visible ASCII, so any stored name (even one with control
/// characters, from before uploads refused them) makes a valid header.
fn content_disposition(file_name: &str) -> HeaderValue {
    let fallback: String = file_name
        .chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\') { c } else { '_' })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for byte in file_name.bytes() {
        // RFC 8187 attr-char: letters, digits and `!#$&+-.^_`|~`.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::try_from(format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

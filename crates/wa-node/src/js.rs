//! The Node-API exports (what `package/index.js` calls). Thin: argument passing and error
//! conversion only; everything else is in [`crate::handle`].

use std::path::PathBuf;
use std::sync::Arc;

use napi::Status;
use napi_derive::napi;
use wa_auth::AuthError;

use crate::error;
use crate::handle::{CredsSnapshot, Handle};
use crate::options;

fn to_js(e: AuthError) -> napi::Error {
    napi::Error::new(Status::GenericFailure, error::encode(&e))
}

/// `keys.get`'s answer: JSON text of `{id: value | null}` and whether it holds Buffer objects.
#[napi(object)]
pub struct GetResult {
    /// The JSON text.
    pub json: String,
    /// Whether Buffer objects need reviving.
    pub buffers: bool,
}

impl From<crate::values::GetOutput> for GetResult {
    fn from(out: crate::values::GetOutput) -> Self {
        Self {
            json: out.json,
            buffers: out.buffers,
        }
    }
}

/// An open store.
#[napi]
pub struct AuthStore {
    handle: Arc<Handle>,
}

fn store(result: wa_auth::Result<Handle>) -> napi::Result<AuthStore> {
    result
        .map(|handle| AuthStore {
            handle: Arc::new(handle),
        })
        .map_err(to_js)
}

/// Opens (or creates) the native store in `dir`; `options` is JSON text.
#[napi]
pub async fn open_native(dir: String, options: String) -> napi::Result<AuthStore> {
    let options = options::parse(&options).map_err(to_js)?;
    store(Handle::open_native(&PathBuf::from(dir), options).await)
}

/// Opens (or creates) the Baileys folder `dir`; `options` is JSON text.
#[napi]
pub async fn open_folder(dir: String, options: String) -> napi::Result<AuthStore> {
    let options = options::parse(&options).map_err(to_js)?;
    store(Handle::open_folder(&PathBuf::from(dir), options).await)
}

/// Opens a PostgreSQL instance; `options` is JSON text.
#[napi]
pub async fn open_postgres(options: String) -> napi::Result<AuthStore> {
    let options = options::parse(&options).map_err(to_js)?;
    store(Handle::open_postgres(options).await)
}

/// The separator between code and message in error reasons.
#[napi]
pub fn error_separator() -> String {
    error::SEPARATOR.to_string()
}

#[napi]
impl AuthStore {
    /// The creds at open, as `creds.json` text.
    #[napi]
    pub fn creds(&self) -> String {
        self.handle.creds_json().to_owned()
    }

    /// The Baileys major version whose shapes `get` returns (6 or 7).
    #[napi]
    pub fn baileys_version(&self) -> u32 {
        match self.handle.flavour() {
            wa_store_compat::Flavour::Baileys6 => 6,
            _ => 7,
        }
    }

    /// `native`, `compat` or `postgres`.
    #[napi]
    pub fn backend(&self) -> String {
        self.handle.backend_name().to_owned()
    }

    /// Whether `getNow` may be used.
    #[napi]
    pub fn reads_from_memory(&self) -> bool {
        self.handle.reads_from_memory()
    }

    /// `keys.get`, answered on the calling thread (memory stores only).
    #[napi]
    pub fn get_now(&self, kind: String, ids: Vec<String>) -> napi::Result<GetResult> {
        self.handle
            .get_now(&kind, &ids)
            .map(Into::into)
            .map_err(to_js)
    }

    /// `keys.get`.
    #[napi]
    pub async fn get(&self, kind: String, ids: Vec<String>) -> napi::Result<GetResult> {
        let handle = self.handle.clone();
        handle.get(&kind, &ids).await.map(Into::into).map_err(to_js)
    }

    /// `keys.set`: `data` is JSON text; `creds` (JSON text, numbered `credsSeq`) rides along.
    #[napi]
    pub async fn set(
        &self,
        data: String,
        creds: Option<String>,
        creds_seq: u32,
    ) -> napi::Result<()> {
        let handle = self.handle.clone();
        let snapshot = creds.map(|json| CredsSnapshot {
            seq: u64::from(creds_seq),
            json,
        });
        handle.set(&data, snapshot).await.map_err(to_js)
    }

    /// `saveCreds`: `creds` is JSON text, numbered `credsSeq`.
    #[napi]
    pub async fn save_creds(&self, creds: String, creds_seq: u32) -> napi::Result<()> {
        let handle = self.handle.clone();
        let snapshot = CredsSnapshot {
            seq: u64::from(creds_seq),
            json: creds,
        };
        handle.save_creds(snapshot).await.map_err(to_js)
    }

    /// `keys.clear`.
    #[napi]
    pub async fn clear(&self) -> napi::Result<()> {
        let handle = self.handle.clone();
        handle.clear().await.map_err(to_js)
    }

    /// Flushes and releases the store.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let handle = self.handle.clone();
        handle.close().await.map_err(to_js)
    }
}

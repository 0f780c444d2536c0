//! The storage client: K2V rows and S3 blobs over HTTP, signed with SigV4, as Garage speaks them.
//! The same client talks to fakes3 in the simulation and on loopback, and to a real Garage.
//!
//! CONTRACT (filled in by the storage work; signatures are fixed, the rest of the server codes against them):
//!
//! ```ignore
//! pub struct StorageConfig { s3_endpoint: String, k2v_endpoint: String, region: String, bucket: String,
//!                            key_id: String, secret: String, max_in_flight: usize, max_idle_connections: usize }
//! pub struct Store;                       // Clone (Arc inside), Send + Sync
//! impl Store {
//!   pub fn new(config: StorageConfig, env: Env) -> Store;
//!   // K2V
//!   pub async fn row_read(&self, pk: &str, sk: &str) -> Result<Option<Row>, StorageError>;
//!   pub async fn row_insert(&self, pk: &str, sk: &str, ct: Option<&CausalityToken>, value: Bytes) -> Result<(), StorageError>;
//!   pub async fn row_delete(&self, pk: &str, sk: &str, ct: &CausalityToken) -> Result<(), StorageError>;
//!   pub async fn row_poll(&self, pk: &str, sk: &str, ct: &CausalityToken, timeout_s: u32) -> Result<Option<Row>, StorageError>; // None = 304
//!   pub async fn rows_read(&self, query: &RowQuery) -> Result<RowPage, StorageError>;            // ReadBatch, one search
//!   pub async fn rows_read_batch(&self, queries: &[RowQuery]) -> Result<Vec<RowPage>, StorageError>;
//!   pub async fn rows_insert_batch(&self, items: &[RowInsert]) -> Result<(), StorageError>;
//!   pub async fn rows_delete_batch(&self, queries: &[RowQuery]) -> Result<Vec<u64>, StorageError>;
//!   pub async fn partitions(&self, prefix: &str, start: Option<&str>, limit: Option<u32>) -> Result<PartitionPage, StorageError>; // ReadIndex
//!   // S3
//!   pub async fn blob_put(&self, key: &str, body: Bytes) -> Result<(), StorageError>;
//!   pub async fn blob_get(&self, key: &str, range: Option<std::ops::Range<u64>>) -> Result<Bytes, StorageError>;
//!   pub async fn blob_head(&self, key: &str) -> Result<Option<u64>, StorageError>;   // size
//!   pub async fn blob_delete(&self, key: &str) -> Result<(), StorageError>;
//!   pub async fn blob_copy(&self, from: &str, to: &str) -> Result<(), StorageError>;
//!   pub async fn blob_list(&self, prefix: &str, continuation: Option<&str>, max_keys: u32) -> Result<BlobPage, StorageError>;
//! }
//! pub struct Row { pub ct: CausalityToken, pub values: Vec<Option<Bytes>> }   // None = tombstone
//! pub struct CausalityToken(pub String);                                       // opaque
//! pub struct RowQuery { pub pk: String, pub prefix: Option<String>, pub start: Option<String>, pub end: Option<String>,
//!                       pub limit: Option<u32>, pub reverse: bool, pub single_item: bool, pub tombstones: bool }
//! pub struct RowItem { pub sk: String, pub ct: CausalityToken, pub values: Vec<Option<Bytes>> }
//! pub struct RowPage { pub items: Vec<RowItem>, pub next_start: Option<String> }
//! pub struct RowInsert { pub pk: String, pub sk: String, pub ct: Option<CausalityToken>, pub value: Option<Bytes> }
//! pub struct PartitionPage { pub partitions: Vec<(String, u64)>, pub next_start: Option<String> }
//! pub struct BlobPage { pub keys: Vec<(String, u64)>, pub next_continuation: Option<String> }
//! pub enum StorageError { NoSuchKey, Conflict, Timeout, Http { status: u16, code: String, message: String }, Io(std::io::Error), Protocol(String) }
//! ```

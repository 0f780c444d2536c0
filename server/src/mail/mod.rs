//! A user's mail in the store: the mailbox list, each mailbox's event log, per-message metadata
//! records and encrypted body chunks. Everything written is sealed under the user's secret key.

pub mod body;
pub mod checkpoint;
pub mod index;
pub mod layout;
pub mod overflow;
pub mod transaction;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::{CryptoError, SecretKey, STREAM_PREFIX_BYTES};
use crate::env::Env;
use crate::storage::{CausalityToken, RowInsert, RowQuery, StorageError, Store};
use index::{Change, Index, Op};
use transaction::LogWrite;

/// Why a mail operation failed.
#[derive(Debug, Error)]
pub enum MailError {
    /// The store failed or could not be reached.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A sealed value could not be opened.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// A value opened but did not decode: the store holds something this version cannot read.
    #[error("corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Decoder message.
        detail: String,
    },
    /// No mailbox of that name.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// A mailbox of that name exists already.
    #[error("mailbox already exists")]
    MailboxExists,
}

/// A mailbox in the user's list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Random id naming its log partition.
    pub id: [u8; 16],
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
    /// RFC 6154 special use (`\\Sent`, ...), if any.
    pub special_use: Option<String>,
}

/// The hierarchy separator of mailbox names (Dovecot's and Aerogramme's, which the trace's clients used).
pub const SEPARATOR: char = '.';

/// Mailboxes every new user gets, with their RFC 6154 special use.
pub const SPECIAL_MAILBOXES: [(&str, &str); 5] = [
    ("Archive", "\\Archive"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
];

/// The user's mailboxes by name (UTF-8, [`SEPARATOR`] between hierarchy levels).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxList {
    /// Name to entry.
    pub mailboxes: BTreeMap<String, MailboxEntry>,
}

/// Where a body's chunks are and how to open them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BodyRef {
    /// Id naming the body's chunk objects (copies of a message share it).
    pub id: [u8; 16],
    /// Size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last one may be shorter).
    pub chunk_bytes: u32,
    /// Nonce prefix of the body's AEAD stream.
    pub prefix: [u8; STREAM_PREFIX_BYTES],
    /// The body's own key (random per message, so that mail can be delivered without the
    /// user's secret key); only ever stored inside sealed records.
    pub key: [u8; 32],
}

impl BodyRef {
    /// Number of chunks (an empty body has one empty chunk).
    pub fn chunks(&self) -> u32 {
        (self.size.div_ceil(self.chunk_bytes as u64)).max(1) as u32
    }
}

/// Per-message record, sealed in K2V: what FETCH needs without reading the body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The body in S3.
    pub body: BodyRef,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
    /// Envelope, body structure, header block and part offsets.
    pub meta: crate::mime::MessageMeta,
}

/// A message delivered by LMTP, sealed to the recipient's public key until their next session imports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    /// Message id.
    pub message: [u8; 16],
    /// Its record (body key inside).
    pub record: MessageRecord,
}

/// A mailbox's recent watermark as stored, sealed, in its [`layout::recent_row`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct RecentMark {
    /// The first UID that no session has claimed as \Recent.
    next_uid: u32,
    /// Random id of the claim that wrote it, so that a session tells its own write from another's.
    claim: [u8; 16],
}

/// Hands out log sort keys that increase within this server instance: `{ms:016x}{node:08x}`.
pub struct LogClock {
    node: u32,
    last_ms: Mutex<u64>,
    /// Per log partition being written, the lock of [`LogClock::turn`].
    turns: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A writer's turn at one log (see [`LogClock::turn`]); the next writer's turn starts when it drops.
pub struct LogTurn<'a> {
    clock: &'a LogClock,
    pk: String,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LogTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        drop(self.lock.take());
        // Never poisoned in practice: the critical sections cannot panic.
        let mut turns = self.clock.turns.lock().unwrap_or_else(|e| e.into_inner());
        // The map's own reference is the last one: no writer holds or awaits this log's turn.
        if turns
            .get(&self.pk)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.pk);
        }
    }
}

impl LogClock {
    /// A clock for a server instance with a random node id.
    pub fn new(env: &Env) -> Self {
        LogClock {
            node: u32::from_be_bytes(env.random()),
            last_ms: Mutex::new(0),
            turns: Mutex::new(BTreeMap::new()),
        }
    }

    /// Waits for this instance's turn to write to log partition `pk`. A writer takes its sort
    /// keys after its turn starts and keeps the turn until its rows are stored, so that the rows
    /// this instance writes to one log land in sort-key order. Otherwise a reader could fold a
    /// row while one with a smaller key was still on its way: it would never see that one (its
    /// cursor is past it), and a later fold would give different UIDs to every message after it.
    pub async fn turn(&self, pk: &str) -> LogTurn<'_> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(pk.to_string()).or_default().clone()
        };
        // Built before waiting, so that a writer dropped while waiting still tidies the map.
        let mut turn = LogTurn {
            clock: self,
            pk: pk.to_string(),
            lock: Some(lock.clone()),
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    /// A sort key later than both the wall clock's and `after`'s.
    pub fn next(&self, env: &Env, after: Option<&str>) -> String {
        let now_ms = env
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let after_ms = after
            .and_then(|sk| sk.get(..16))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        // Never poisoned in practice: the critical section cannot panic.
        let mut last = self.last_ms.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last + 1).max(now_ms).max(after_ms + 1);
        format!("{:016x}{:08x}", *last, self.node)
    }
}

/// Attempts of a storage read that checks whether a write whose answer failed was applied (and
/// of a body chunk read): a check that fails too would turn an applied write into a NO, which the
/// client retries into a duplicate.
const CHECK_ATTEMPTS: u32 = 5;
/// Pause before the second check attempt; each further one waits this much longer.
const CHECK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs an idempotent storage read, again after a transient failure, [`CHECK_ATTEMPTS`] times at most.
pub(crate) async fn read_retrying<T, F, Fut>(mut read: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let mut attempt = 1;
    loop {
        match read().await {
            Err(e) if e.is_transient() && attempt < CHECK_ATTEMPTS => {
                tokio::time::sleep(CHECK_PAUSE * attempt).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Inserts a row; when the store answers with an error, reads the row back and counts the write
/// as done if `value` (sealed, so unique) is there: the answer was lost, not the write.
pub(crate) async fn insert_checked(
    store: &Store,
    pk: &str,
    sk: &str,
    ct: Option<&CausalityToken>,
    value: Bytes,
) -> Result<(), StorageError> {
    match store.row_insert(pk, sk, ct, value.clone()).await {
        Ok(()) => Ok(()),
        Err(e) => match read_retrying(|| store.row_read(pk, sk)).await {
            Ok(Some(row)) if row.values.iter().flatten().any(|v| *v == value) => Ok(()),
            _ => Err(e),
        },
    }
}

/// Rows read per request when folding a log.
const LOG_PAGE: u32 = 256;

/// How folding a log into an index ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Every row after the cursor was folded.
    Done,
    /// A checkpoint deleted rows after the cursor before they were read: the index misses them
    /// and must be loaded again from the newest checkpoint. Nothing was folded past the gap.
    Gap,
}

/// One authenticated user's view of the store.
#[derive(Clone)]
pub struct UserStore {
    store: Store,
    user: Arc<str>,
    key: SecretKey,
    clock: Arc<LogClock>,
}

fn context(pk: &str, sk: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(pk.len() + sk.len() + 1);
    c.extend_from_slice(pk.as_bytes());
    c.push(0);
    c.extend_from_slice(sk.as_bytes());
    c
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    what: &str,
    bytes: &[u8],
) -> Result<T, MailError> {
    postcard::from_bytes(bytes).map_err(|e| MailError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("serialising plain data to a Vec cannot fail")
}

impl UserStore {
    /// The store of user `user` (its hashed id), with its unwrapped secret key.
    pub fn new(store: Store, user: &str, key: SecretKey, clock: Arc<LogClock>) -> Self {
        UserStore {
            store,
            user: user.into(),
            key,
            clock,
        }
    }

    /// The user's store-side id.
    pub fn user_id(&self) -> &str {
        &self.user
    }

    /// The storage client.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The environment (the store's: one per server, not a copy per session).
    pub fn env(&self) -> &Env {
        self.store.env()
    }

    pub(crate) fn seal(&self, pk: &str, sk: &str, plain: &[u8]) -> Bytes {
        Bytes::from(self.key.seal(self.env(), &context(pk, sk), plain))
    }

    pub(crate) fn open(&self, pk: &str, sk: &str, sealed: &[u8]) -> Result<Vec<u8>, MailError> {
        Ok(self.key.open(&context(pk, sk), sealed)?)
    }

    /// The mailbox list and the token to update it; INBOX always exists.
    pub async fn mailbox_list(&self) -> Result<(MailboxList, Option<CausalityToken>), MailError> {
        let (pk, sk) = layout::mailboxes_row(&self.user);
        let mut list = MailboxList::default();
        let mut token = None;
        if let Some(row) = read_retrying(|| self.store.row_read(&pk, sk)).await? {
            // Concurrent values (two instances created mailboxes at once) merge by union; on a
            // name clash the smaller id wins on every instance alike.
            for value in row.values.iter().flatten() {
                let other: MailboxList = decode("mailbox list", &self.open(&pk, sk, value)?)?;
                for (name, entry) in other.mailboxes {
                    match list.mailboxes.get(&name) {
                        Some(existing) if existing.id <= entry.id => {}
                        _ => {
                            list.mailboxes.insert(name, entry);
                        }
                    }
                }
            }
            token = Some(row.ct);
        }
        if token.is_none() {
            // A new user: INBOX and the special-use mailboxes clients expect, with ids derived from
            // the user's key so that instances creating the list at once agree on them.
            list.mailboxes
                .insert("INBOX".to_string(), self.default_entry("INBOX"));
            for (name, special) in SPECIAL_MAILBOXES {
                let mut entry = self.default_entry(name);
                entry.special_use = Some(special.to_string());
                list.mailboxes.insert(name.to_string(), entry);
            }
            token = Some(self.write_list(&list, token.as_ref()).await?);
        } else if !list.mailboxes.contains_key("INBOX") {
            list.mailboxes
                .insert("INBOX".to_string(), self.default_entry("INBOX"));
            token = Some(self.write_list(&list, token.as_ref()).await?);
        }
        Ok((list, token))
    }

    /// The entry of a mailbox every user starts with: id and UIDVALIDITY are a keyed hash of its name.
    fn default_entry(&self, name: &str) -> MailboxEntry {
        use blake2::digest::{Update, VariableOutput};
        let mut hasher = blake2::Blake2bVar::new(20).expect("20 is a valid BLAKE2b output size");
        hasher.update(b"imapsim default mailbox v1\0");
        hasher.update(&self.key.to_bytes());
        hasher.update(name.as_bytes());
        let mut out = [0u8; 20];
        hasher
            .finalize_variable(&mut out)
            .expect("buffer has the requested size");
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[..16]);
        let uidvalidity = u32::from_be_bytes([out[16], out[17], out[18], out[19]]) | 1;
        MailboxEntry {
            id,
            uidvalidity,
            subscribed: true,
            special_use: None,
        }
    }

    fn new_entry(&self) -> MailboxEntry {
        let uidvalidity = u32::from_be_bytes(self.env().random()) | 1;
        MailboxEntry {
            id: self.env().random(),
            uidvalidity,
            subscribed: true,
            special_use: None,
        }
    }

    async fn write_list(
        &self,
        list: &MailboxList,
        ct: Option<&CausalityToken>,
    ) -> Result<CausalityToken, MailError> {
        let (pk, sk) = layout::mailboxes_row(&self.user);
        let sealed = self.seal(&pk, sk, &encode(list));
        self.insert_verified(&pk, sk, ct, sealed).await?;
        // Read back for the new token (K2V returns none on insert). Retried: the list is written
        // already, and failing now would answer NO to a CREATE (RENAME, DELETE...) that happened.
        let row = read_retrying(|| self.store.row_read(&pk, sk)).await?;
        Ok(row
            .map(|r| r.ct)
            .unwrap_or_else(|| CausalityToken(String::new())))
    }

    /// Finds a mailbox by name (INBOX case-insensitively).
    pub async fn find_mailbox(&self, name: &str) -> Result<MailboxEntry, MailError> {
        let (list, _) = self.mailbox_list().await?;
        list.mailboxes
            .get(canonical(name))
            .cloned()
            .ok_or(MailError::NoSuchMailbox)
    }

    /// Creates a mailbox.
    pub async fn create_mailbox(&self, name: &str) -> Result<MailboxEntry, MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let name = canonical(name);
        if list.mailboxes.contains_key(name) {
            return Err(MailError::MailboxExists);
        }
        let entry = self.new_entry();
        list.mailboxes.insert(name.to_string(), entry.clone());
        self.write_list(&list, token.as_ref()).await?;
        Ok(entry)
    }

    /// Deletes a mailbox from the list (its log and messages become unreachable).
    pub async fn delete_mailbox(&self, name: &str) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        if list.mailboxes.remove(canonical(name)).is_none() {
            return Err(MailError::NoSuchMailbox);
        }
        self.write_list(&list, token.as_ref()).await?;
        Ok(())
    }

    /// Renames a mailbox and its children; renaming INBOX moves its messages to a new mailbox and
    /// leaves an empty INBOX, as RFC 3501 says.
    pub async fn rename_mailbox(&self, from: &str, to: &str) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let (from, to) = (canonical(from), canonical(to));
        if !list.mailboxes.contains_key(from) {
            return Err(MailError::NoSuchMailbox);
        }
        if list.mailboxes.contains_key(to) {
            return Err(MailError::MailboxExists);
        }
        let child_prefix = format!("{from}{SEPARATOR}");
        let moved: Vec<String> = list
            .mailboxes
            .keys()
            .filter(|n| n.as_str() == from || (from != "INBOX" && n.starts_with(&child_prefix)))
            .cloned()
            .collect();
        for name in moved {
            let entry = list.mailboxes.remove(&name).expect("listed just above");
            let new_name = format!("{to}{}", &name[from.len()..]);
            list.mailboxes.insert(new_name, entry);
        }
        if from == "INBOX" {
            list.mailboxes.insert("INBOX".to_string(), self.new_entry());
        }
        self.write_list(&list, token.as_ref()).await?;
        Ok(())
    }

    /// Marks a mailbox (un)subscribed.
    pub async fn set_subscribed(&self, name: &str, subscribed: bool) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let entry = list
            .mailboxes
            .get_mut(canonical(name))
            .ok_or(MailError::NoSuchMailbox)?;
        if entry.subscribed != subscribed {
            entry.subscribed = subscribed;
            self.write_list(&list, token.as_ref()).await?;
        }
        Ok(())
    }

    /// Inserts a row; when the store answers with an error, reads the row back and counts the write
    /// as done if our exact (sealed, so unique) value is there: the answer was lost, not the write,
    /// and saying NO would make the client retry into a duplicate.
    async fn insert_verified(
        &self,
        pk: &str,
        sk: &str,
        ct: Option<&CausalityToken>,
        value: Bytes,
    ) -> Result<(), MailError> {
        Ok(insert_checked(&self.store, pk, sk, ct, value).await?)
    }

    /// Writes several operations to a mailbox's log as one row, in order, after `after`.
    pub async fn log_append_batch(
        &self,
        mailbox: &MailboxEntry,
        ops: Vec<Op>,
        after: Option<&str>,
    ) -> Result<(), MailError> {
        self.log_commit(vec![LogWrite {
            mailbox,
            ops,
            after,
        }])
        .await
    }

    /// Appends an operation to a mailbox's log, after `after` (the caller's cursor); returns its sort key.
    pub async fn log_append(
        &self,
        mailbox: &MailboxEntry,
        op: &Op,
        after: Option<&str>,
    ) -> Result<String, MailError> {
        let pk = layout::log_partition(&self.user, &mailbox.id);
        let _turn = self.clock.turn(&pk).await;
        let sk = self.clock.next(self.env(), after);
        let sealed = self.seal(&pk, &sk, &encode(op));
        self.insert_verified(&pk, &sk, None, sealed).await?;
        Ok(sk)
    }

    /// Folds the log rows after the index's cursor into a session's view, reporting each visible
    /// change; expunged messages stay marked until the session announces them
    /// ([`Index::announce_expunges`]). When a checkpoint has deleted rows past the cursor before
    /// they were folded, the mailbox is loaded again and the difference reported instead.
    pub async fn refresh(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        mut on_change: impl FnMut(&Index, Change),
    ) -> Result<(), MailError> {
        match self
            .refresh_inner(mailbox, index, None, true, |_, _| {}, &mut on_change)
            .await?
        {
            Fold::Done => Ok(()),
            Fold::Gap => {
                let fresh = Box::pin(self.load_index(mailbox)).await?;
                index.resync(fresh, &mut on_change);
                Ok(())
            }
        }
    }

    /// [`UserStore::refresh`] that also shows `before` the state ahead of each row, with its sort
    /// key, and leaves it to the caller to recover from a [`Fold::Gap`].
    pub(crate) async fn refresh_with(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        until: Option<&str>,
        before: impl FnMut(&Index, &str),
    ) -> Result<Fold, MailError> {
        self.refresh_inner(mailbox, index, until, false, before, &mut |_, _| {})
            .await
    }

    async fn refresh_inner(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        until: Option<&str>,
        view: bool,
        mut before: impl FnMut(&Index, &str),
        on_change: &mut impl FnMut(&Index, Change),
    ) -> Result<Fold, MailError> {
        let pk = layout::log_partition(&self.user, &mailbox.id);
        loop {
            // Each page starts at the cursor's own row, not after it: a checkpoint deletes the
            // rows before its cursor, so while that row is there no row after it was deleted.
            let anchor = index.cursor.clone();
            let query = RowQuery {
                pk: pk.clone(),
                prefix: None,
                start: anchor.clone(),
                end: until.map(|u| format!("{u}\0")),
                limit: Some(LOG_PAGE),
                reverse: false,
                single_item: false,
                tombstones: false,
            };
            // Retried: a refresh that fails after a command's writes succeeded turns the
            // command into a NO, which the client retries into duplicates (COPY, MOVE).
            let page = read_retrying(|| self.store.rows_read(&query)).await?;
            let mut items = page.items.as_slice();
            match (&anchor, items.first()) {
                (Some(cursor), Some(first)) if first.sk == *cursor => items = &items[1..],
                (None, None) => {}
                // The row is gone (or the fold starts from the log's beginning): rows may have
                // been deleted unread if a checkpoint beyond it exists, listed after the read
                // since a checkpoint's object is written before the rows it covers are deleted.
                _ => {
                    if self.checkpoint_beyond(mailbox, anchor.as_deref()).await? {
                        return Ok(Fold::Gap);
                    }
                }
            }
            for item in items {
                before(index, &item.sk);
                for value in item.values.iter().flatten() {
                    let op: Op = decode("log op", &self.open(&pk, &item.sk, value)?)?;
                    for op in op.flatten() {
                        let change = if view {
                            index.apply_in_view(op)
                        } else {
                            index.apply(op)
                        };
                        index.ops_since_checkpoint += 1;
                        on_change(index, change);
                    }
                }
                index.cursor = Some(item.sk.clone());
            }
            if page.next_start.is_none() || items.is_empty() {
                return Ok(Fold::Done);
            }
        }
    }

    /// The UIDs that `messages` got in `mailbox` (0 for one not found), folding its log into a
    /// throw-away index: for UIDPLUS answers about a mailbox that is not selected.
    pub async fn uids_of(
        &self,
        mailbox: &MailboxEntry,
        messages: &[[u8; 16]],
    ) -> Result<Vec<u32>, MailError> {
        let index = self.load_index(mailbox).await?;
        let by_id: BTreeMap<[u8; 16], u32> =
            index.entries.iter().map(|e| (e.message, e.uid)).collect();
        Ok(messages
            .iter()
            .map(|m| by_id.get(m).copied().unwrap_or(0))
            .collect())
    }

    /// Writes a message's metadata record.
    pub async fn put_record(
        &self,
        message: &[u8; 16],
        record: &MessageRecord,
    ) -> Result<(), MailError> {
        let pk = layout::meta_partition(&self.user);
        let sk = layout::hex_id(message);
        let sealed = self.seal(&pk, &sk, &encode(record));
        self.insert_verified(&pk, &sk, None, sealed).await
    }

    /// Reads a message's metadata record.
    pub async fn record(&self, message: &[u8; 16]) -> Result<MessageRecord, MailError> {
        let pk = layout::meta_partition(&self.user);
        let sk = layout::hex_id(message);
        let row = read_retrying(|| self.store.row_read(&pk, &sk))
            .await?
            .ok_or(MailError::Storage(StorageError::NoSuchKey))?;
        let value = row
            .values
            .iter()
            .flatten()
            .next()
            .ok_or(MailError::Storage(StorageError::NoSuchKey))?;
        decode("message record", &self.open(&pk, &sk, value)?)
    }

    /// Starts writing a new message body.
    pub fn body_writer(&self, message: [u8; 16], chunk_bytes: usize) -> body::BodyWriter {
        body::BodyWriter::new(
            self.store.clone(),
            self.env().clone(),
            self.user.to_string(),
            message,
            chunk_bytes,
        )
    }

    /// Moves mail delivered by LMTP (sealed to the user's public key) into INBOX: the record is
    /// re-sealed under the user's key, an Append joins INBOX's log, then the delivery row goes.
    /// Each step is idempotent, so an interrupted import is finished by the next one.
    pub async fn import_deliveries(
        &self,
        inbox: &MailboxEntry,
        after: Option<&str>,
    ) -> Result<usize, MailError> {
        let pk = layout::deliveries_partition(&self.user);
        let query = RowQuery {
            pk: pk.clone(),
            prefix: None,
            start: None,
            end: None,
            limit: Some(LOG_PAGE),
            reverse: false,
            single_item: false,
            tombstones: false,
        };
        let page = read_retrying(|| self.store.rows_read(&query)).await?;
        let mut imported = 0;
        for item in &page.items {
            for value in item.values.iter().flatten() {
                let plain = self.key.open_delivered(value)?;
                let delivery: Delivery = decode("delivery", &plain)?;
                self.put_record(&delivery.message, &delivery.record).await?;
                let op = Op::Append {
                    message: delivery.message,
                    size: delivery.record.body.size as u32,
                    internal_date: delivery.record.internal_date,
                    flags: Vec::new(),
                };
                self.log_append(inbox, &op, after).await?;
                imported += 1;
            }
            // A delete whose answer was lost must not leave the delivery to be imported again
            // after its message was expunged: check that the row is gone before failing.
            if let Err(e) = self.store.row_delete(&pk, &item.sk, &item.ct).await {
                match read_retrying(|| self.store.row_read(&pk, &item.sk)).await {
                    Ok(None) => {}
                    Ok(Some(row)) if row.values.iter().all(Option::is_none) => {}
                    _ => return Err(e.into()),
                }
            }
        }
        Ok(imported)
    }

    /// The recent watermark of a mailbox (1 when no session ever claimed any) and the row's token.
    async fn read_recent(
        &self,
        mailbox: &MailboxEntry,
    ) -> Result<(u32, Option<CausalityToken>), MailError> {
        let (pk, sk) = layout::recent_row(&self.user, &mailbox.id);
        let Some(row) = self.store.row_read(&pk, sk).await? else {
            return Ok((1, None));
        };
        // Concurrent claims leave several values: the watermark is the highest.
        let mut watermark = 1;
        for value in row.values.iter().flatten() {
            let mark: RecentMark = decode("recent watermark", &self.open(&pk, sk, value)?)?;
            watermark = watermark.max(mark.next_uid);
        }
        Ok((watermark, Some(row.ct)))
    }

    /// The first UID of `mailbox` that no session has claimed as \Recent: messages from it on are
    /// recent for the next session that SELECTs the mailbox.
    pub async fn recent_watermark(&self, mailbox: &MailboxEntry) -> Result<u32, MailError> {
        Ok(self.read_recent(mailbox).await?.0)
    }

    /// Claims as \Recent, for the calling session, the UIDs from the mailbox's recent watermark up
    /// to `upto` (excluded), moving the watermark to `upto`; returns the UIDs won (maybe none).
    ///
    /// The write carries the causality token of the read, so two sessions claiming at once leave
    /// two concurrent values. Each reads the row back and has won only if its own value is alone
    /// there: whichever wrote second sees both, so no UID is ever recent in two sessions (in a
    /// close race both may lose, and those UIDs are recent in none).
    pub async fn claim_recent(
        &self,
        mailbox: &MailboxEntry,
        upto: u32,
    ) -> Result<std::ops::Range<u32>, MailError> {
        let (watermark, token) = self.read_recent(mailbox).await?;
        if watermark >= upto {
            return Ok(upto..upto);
        }
        let (pk, sk) = layout::recent_row(&self.user, &mailbox.id);
        let mark = RecentMark {
            next_uid: upto,
            claim: self.env().random(),
        };
        let sealed = self.seal(&pk, sk, &encode(&mark));
        self.store
            .row_insert(&pk, sk, token.as_ref(), sealed)
            .await?;
        let alone = match self.store.row_read(&pk, sk).await? {
            Some(row) => match row.values.as_slice() {
                [Some(value)] => {
                    decode::<RecentMark>("recent watermark", &self.open(&pk, sk, value)?)? == mark
                }
                _ => false,
            },
            None => false,
        };
        Ok(if alone { watermark..upto } else { upto..upto })
    }

    /// Reads and decrypts chunk `index` of a body.
    pub async fn body_chunk(
        &self,
        message: &[u8; 16],
        body: &BodyRef,
        index: u32,
    ) -> Result<Vec<u8>, MailError> {
        let _ = message;
        let key = layout::body_chunk_key(&self.user, &body.id, index);
        let mut buf = read_retrying(|| self.store.blob_get(&key, None))
            .await?
            .to_vec();
        let last = index + 1 == body.chunks();
        SecretKey::from_bytes(body.key)
            .body_stream(&body.prefix)
            .open_chunk(index, last, &mut buf)?;
        Ok(buf)
    }

    /// Bumps the mailbox's watch row so that watchers wake up.
    pub async fn notify(&self, mailbox: &MailboxEntry) -> Result<(), MailError> {
        let key = layout::watch_key(&self.user, &mailbox.id);
        Ok(crate::watch::bump(&self.store, self.env(), &key).await?)
    }

    /// Inserts rows in one batch (used to write several log operations at once).
    pub async fn insert_batch(&self, items: &[RowInsert]) -> Result<(), MailError> {
        Ok(self.store.rows_insert_batch(items).await?)
    }
}

/// IMAP mailbox names: INBOX in any case is INBOX.
pub fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

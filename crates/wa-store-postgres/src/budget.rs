//! Bounded memory for a fleet ([`FleetOptions::memory_budget`](crate::FleetOptions)).
//!
//! In budgeted mode an account keeps its creds and its small kinds resident, loaded at open
//! as in load-all mode (*pinned*). Sessions and sender keys — about nine tenths of a realistic
//! account's bytes — are *cached*: read from the database on first use, kept in the account's
//! [`Cache`], and evicted least-recently-used over the whole replica when its resident bytes
//! exceed the budget.
//!
//! Rules that keep every read current (the database plus the queued commits is the truth):
//! - A commit writes its cached-kind keys into the cache (a delete as an absent entry) tagged
//!   with its sequence number. An entry is *dirty* while that number is above the account's
//!   durable `flushed_seq`; dirty entries are never evicted, so a queued value (or delete)
//!   always wins over the database.
//! - A resident entry is always the key's current state; a key with no entry has its current
//!   state in the database (it was never touched since open, or its entry was evicted once
//!   clean, i.e. durable).
//! - While a database read of an account is under way, nothing of that account is evicted,
//!   and the rows read are inserted only for keys still without an entry: a commit made
//!   during the read has an entry and wins. So neither a value nor an absence read from the
//!   database can replace a newer commit (absences are cached too, as clean absent entries).
//! - `list` and `kinds` of a cached kind read the ids from the database and merge the
//!   resident entries over them under the same rule (ids are not kept resident).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tracing::warn;
use wa_auth::{KeyId, KeyKind, KeyValue, Result};

use crate::error::{backend, backend_msg};
use crate::memory::Slot;
use crate::queue::{Data, Encoded};
use crate::session::Lent;
use crate::store::Shared;
use crate::telemetry::Telemetry;

/// What one cached entry costs besides its id and value: the map entry, the `KeyId` and
/// `Slot` headers, the bookkeeping fields (measured order of magnitude, see
/// `docs/postgres.md`).
pub(crate) const ENTRY_OVERHEAD: usize = 96;

/// How often the fleet's trimmer checks the budget (evictions also run at once after every
/// read, commit and flush that may have grown the cache).
const TRIM_INTERVAL: Duration = Duration::from_millis(100);

/// The kinds read on first use and evicted by default in budgeted mode: sessions and sender
/// keys; every other kind stays resident.
pub(crate) fn default_cached_kinds() -> Vec<KeyKind> {
    vec![KeyKind::Session, KeyKind::SenderKey]
}

/// One cached key.
#[derive(Debug)]
struct Entry {
    /// The value; `None`: the key is absent (deleted by a commit, or read as missing).
    slot: Option<Slot>,
    /// What the entry is counted for.
    bytes: usize,
    /// The commit that wrote it; 0 when it was read from the database (clean).
    seq: u64,
    /// The replica's clock when it was last read or written (LRU order).
    used: AtomicU64,
}

/// The cached kinds of one account, in budgeted mode (held in its [`Memory`](crate::memory)).
#[derive(Debug)]
pub(crate) struct Cache {
    budget: Arc<Budget>,
    entries: HashMap<KeyKind, HashMap<KeyId, Entry>>,
    /// Bytes of the entries.
    bytes: usize,
    /// The pinned bytes of the account (as loaded at open), counted in the budget too.
    pinned: usize,
    /// Database reads of this account under way: no eviction from it meanwhile.
    reads: usize,
    /// Keys read from the database, and entries evicted, since open.
    pub loads: u64,
    pub evictions: u64,
}

/// The result of looking ids up in the cache.
pub(crate) struct Lookup {
    /// Resident entries holding a value.
    pub found: Vec<(KeyId, Slot)>,
    /// Ids without an entry: to be read from the database.
    pub missing: Vec<KeyId>,
}

impl Cache {
    /// Whether `kind` is cached (read on first use, evictable).
    pub(crate) fn caches(&self, kind: &KeyKind) -> bool {
        self.budget.kinds.contains(kind)
    }

    /// The cache of an account whose pinned part costs `pinned` bytes.
    pub(crate) fn new(budget: Arc<Budget>, pinned: usize) -> Self {
        budget.pinned.fetch_add(pinned, Ordering::Relaxed);
        Self {
            budget,
            entries: HashMap::new(),
            bytes: 0,
            pinned,
            reads: 0,
            loads: 0,
            evictions: 0,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.values().map(HashMap::len).sum()
    }

    /// The resident entries of `ids` (each once) and the ids without one; marks the entries
    /// as used.
    pub(crate) fn lookup(&self, kind: &KeyKind, ids: &[KeyId]) -> Lookup {
        let now = self.budget.tick();
        let entries = self.entries.get(kind);
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let mut lookup = Lookup {
            found: Vec::new(),
            missing: Vec::new(),
        };
        for id in ids.iter().filter(|id| seen.insert(*id)) {
            match entries.and_then(|e| e.get(id)) {
                Some(entry) => {
                    entry.used.store(now, Ordering::Relaxed);
                    if let Some(slot) = &entry.slot {
                        lookup.found.push((id.clone(), slot.clone()));
                    }
                }
                None => lookup.missing.push(id.clone()),
            }
        }
        lookup
    }

    fn insert(&mut self, kind: &KeyKind, id: KeyId, slot: Option<Slot>, size: usize, seq: u64) {
        let bytes = id.as_str().len() + size + ENTRY_OVERHEAD;
        let entry = Entry {
            slot,
            bytes,
            seq,
            used: AtomicU64::new(self.budget.tick()),
        };
        let old = self
            .entries
            .entry(kind.clone())
            .or_default()
            .insert(id, entry);
        self.add(bytes);
        if let Some(old) = old {
            self.sub(old.bytes);
        }
    }

    fn add(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.budget.cached.fetch_add(bytes, Ordering::Relaxed);
    }

    fn sub(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.budget.cached.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Applies the changes of commit `seq` to cached kind `kind` (`encoded`: the same batch as
    /// the database receives it).
    pub(crate) fn apply(
        &mut self,
        kind: &KeyKind,
        entries: std::collections::BTreeMap<KeyId, Option<KeyValue>>,
        seq: u64,
        encoded: &Encoded,
    ) {
        // Kept in stored form, as the database has it: what the budget counts is what is
        // held (a decoded session takes several times its JSON), at the price of a decode
        // per read.
        let stored: HashMap<&KeyId, &Data> = encoded
            .keys
            .iter()
            .filter(|(k, _, _)| k == kind)
            .filter_map(|(_, id, data)| data.as_ref().map(|data| (id, data)))
            .collect();
        for (id, value) in entries {
            let slot = match (value, stored.get(&id)) {
                (None, _) => None,
                (Some(_), Some(data)) => Some(Slot::Stored((*data).clone())),
                // Not reached: every put of the batch is encoded.
                (Some(value), None) => Some(Slot::Value(Box::new(value))),
            };
            let size = stored.get(&id).map_or(0, |data| data.len());
            self.insert(kind, id, slot, size, seq);
        }
    }

    /// Inserts what a database read found for `ids` (`rows`: those that exist), for the ids
    /// still without an entry; returns the current value of every id that has one.
    fn settle(
        &mut self,
        kind: &KeyKind,
        ids: Vec<KeyId>,
        mut rows: HashMap<KeyId, Data>,
    ) -> (Vec<(KeyId, Slot)>, u64) {
        let before = self.loads;
        let mut found = Vec::new();
        for id in ids {
            let current = self.entries.get(kind).and_then(|e| e.get(&id));
            if let Some(entry) = current {
                // Committed during the read: the commit wins.
                if let Some(slot) = &entry.slot {
                    found.push((id, slot.clone()));
                }
                continue;
            }
            let data = rows.remove(&id);
            let size = data.as_ref().map_or(0, Data::len);
            let slot = data.map(Slot::Stored);
            if let Some(slot) = &slot {
                found.push((id.clone(), slot.clone()));
            }
            self.loads += 1;
            self.insert(kind, id, slot, size, 0);
        }
        (found, self.loads - before)
    }

    /// `listed` (the ids of `kind` in the database) with the resident entries merged over.
    fn merge_ids(&self, kind: &KeyKind, listed: Vec<KeyId>) -> Vec<KeyId> {
        let mut ids: BTreeSet<KeyId> = listed.into_iter().collect();
        for (id, entry) in self.entries.get(kind).into_iter().flatten() {
            match entry.slot {
                Some(_) => ids.insert(id.clone()),
                None => ids.remove(id),
            };
        }
        ids.into_iter().collect()
    }

    /// The clean entries, as eviction candidates `(used, account, kind, id)`.
    fn candidates(&self, flushed_seq: u64, account: usize, out: &mut Vec<Candidate>) {
        if self.reads > 0 {
            return;
        }
        for (kind, entries) in &self.entries {
            for (id, entry) in entries {
                if entry.seq <= flushed_seq {
                    out.push(Candidate {
                        used: entry.used.load(Ordering::Relaxed),
                        account,
                        bytes: entry.bytes,
                        kind: kind.clone(),
                        id: id.clone(),
                    });
                }
            }
        }
    }

    /// Evicts the `victims` still clean and not used since they were chosen; returns how
    /// many were evicted.
    fn evict(&mut self, victims: Vec<Candidate>, flushed_seq: u64) -> u64 {
        if self.reads > 0 {
            return 0;
        }
        let mut evicted = 0;
        for victim in victims {
            let Some(entries) = self.entries.get_mut(&victim.kind) else {
                continue;
            };
            let evictable = entries.get(&victim.id).is_some_and(|entry| {
                entry.seq <= flushed_seq && entry.used.load(Ordering::Relaxed) == victim.used
            });
            if !evictable {
                continue;
            }
            if let Some(entry) = entries.remove(&victim.id) {
                if entries.is_empty() {
                    self.entries.remove(&victim.kind);
                }
                self.sub(entry.bytes);
                evicted += 1;
            }
        }
        self.evictions += evicted;
        evicted
    }

    /// The bytes of the dirty entries (written by commits not yet durable).
    fn dirty_bytes(&self, flushed_seq: u64) -> usize {
        self.entries
            .values()
            .flat_map(HashMap::values)
            .filter(|entry| entry.seq > flushed_seq)
            .map(|entry| entry.bytes)
            .sum()
    }

    /// Forgets everything (the account is closed): its bytes leave the budget.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        let (bytes, pinned) = (self.bytes, self.pinned);
        self.sub(bytes);
        self.budget.pinned.fetch_sub(pinned, Ordering::Relaxed);
        self.pinned = 0;
        self.budget.publish();
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.clear();
    }
}

/// An eviction candidate.
struct Candidate {
    used: u64,
    account: usize,
    bytes: usize,
    kind: KeyKind,
    id: KeyId,
}

/// A replica's memory budget, shared by its accounts' caches.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    /// The cached kinds.
    kinds: Vec<KeyKind>,
    /// The LRU clock: one tick per lookup or insertion.
    clock: AtomicU64,
    pinned: AtomicUsize,
    cached: AtomicUsize,
    accounts: Mutex<Vec<Weak<Shared>>>,
    /// One eviction pass at a time.
    trimming: Mutex<()>,
    /// Bounds the database reads running at once to half the pool, so that first-use reads
    /// never starve the flusher of connections.
    reads: tokio::sync::Semaphore,
    telemetry: Arc<Telemetry>,
    stopped: AtomicBool,
    warned: AtomicBool,
}

impl Budget {
    /// A budget of `limit` bytes caching `kinds`, reading through a pool of `pool_size`.
    pub(crate) fn new(
        limit: usize,
        kinds: Vec<KeyKind>,
        pool_size: usize,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self {
            limit,
            kinds,
            reads: tokio::sync::Semaphore::new((pool_size / 2).max(1)),
            clock: AtomicU64::new(1),
            pinned: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            accounts: Mutex::new(Vec::new()),
            trimming: Mutex::new(()),
            telemetry,
            stopped: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// The names of the cached kinds, which a budgeted open does not load.
    pub(crate) fn kind_names(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.as_str().to_owned()).collect()
    }

    /// Pinned plus cached bytes of every open account.
    pub(crate) fn resident(&self) -> usize {
        self.pinned.load(Ordering::Relaxed) + self.cached.load(Ordering::Relaxed)
    }

    /// Adds an opened account (its cache is already counted).
    pub(crate) fn register(&self, shared: &Arc<Shared>) {
        self.accounts.lock().push(Arc::downgrade(shared));
        self.publish();
    }

    /// Sets the resident-bytes gauge.
    fn publish(&self) {
        self.telemetry.resident_bytes.set(self.resident() as f64);
    }

    fn live_accounts(&self) -> Vec<Arc<Shared>> {
        let mut accounts = self.accounts.lock();
        accounts.retain(|weak| weak.strong_count() > 0);
        accounts.iter().filter_map(Weak::upgrade).collect()
    }

    /// Evicts clean cached entries, least recently used first over every account, until the
    /// resident bytes are down to 90 % of the budget (or nothing clean is left).
    pub(crate) fn trim(&self) {
        if self.resident() <= self.limit {
            return;
        }
        let _turn = self.trimming.lock();
        let resident = self.resident();
        if resident <= self.limit {
            return;
        }
        let accounts = self.live_accounts();
        let mut candidates = Vec::new();
        let mut flushed = Vec::with_capacity(accounts.len());
        for (i, shared) in accounts.iter().enumerate() {
            let flushed_seq = shared.status.borrow().flushed_seq;
            flushed.push(flushed_seq);
            if let Some(cache) = &shared.memory.read().cache {
                cache.candidates(flushed_seq, i, &mut candidates);
            }
        }
        candidates.sort_unstable_by_key(|c| c.used);
        let mut excess = resident - (self.limit - self.limit / 10);
        let mut victims: Vec<Vec<Candidate>> = accounts.iter().map(|_| Vec::new()).collect();
        for candidate in candidates {
            if excess == 0 {
                break;
            }
            excess = excess.saturating_sub(candidate.bytes);
            victims[candidate.account].push(candidate);
        }
        for ((shared, victims), flushed_seq) in accounts.iter().zip(victims).zip(flushed) {
            if victims.is_empty() {
                continue;
            }
            let evicted = match &mut shared.memory.write().cache {
                Some(cache) => cache.evict(victims, flushed_seq),
                None => 0,
            };
            shared.telemetry.evictions.increment(evicted);
        }
        self.publish();
        if self.pinned.load(Ordering::Relaxed) > self.limit
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            warn!(
                budget = self.limit,
                pinned = self.pinned.load(Ordering::Relaxed),
                "the resident kinds of the open accounts alone exceed the memory budget"
            );
        }
    }

    /// Stops the trimmer (the fleet closed).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Trims now and then (flushes make entries evictable without anyone reading), until the
    /// fleet closes.
    pub(crate) async fn trimmer(budget: Weak<Budget>) {
        loop {
            tokio::time::sleep(TRIM_INTERVAL).await;
            let Some(budget) = budget.upgrade() else {
                return;
            };
            if budget.stopped.load(Ordering::Acquire) {
                return;
            }
            budget.trim();
        }
    }

    /// The replica's memory, for [`PostgresFleet::memory`](crate::PostgresFleet::memory).
    pub(crate) fn usage(&self) -> FleetMemory {
        let mut usage = FleetMemory {
            budget: Some(self.limit),
            ..FleetMemory::default()
        };
        for shared in self.live_accounts() {
            let flushed_seq = shared.status.borrow().flushed_seq;
            let memory = shared.memory.read();
            if let Some(cache) = &memory.cache {
                usage.pinned_bytes += cache.pinned;
                usage.cached_bytes += cache.bytes;
                usage.cached_keys += cache.len();
                usage.dirty_bytes += cache.dirty_bytes(flushed_seq);
                usage.cache_loads += cache.loads;
                usage.evictions += cache.evictions;
            }
        }
        usage.resident_bytes = usage.pinned_bytes + usage.cached_bytes;
        usage
    }
}

/// What a fleet holds in memory, from [`PostgresFleet::memory`](crate::PostgresFleet::memory):
/// sums over the accounts open on it. Bytes are counted as in the database (the JSON text of
/// each value, its id) plus a fixed overhead per cached entry; see `docs/postgres.md` for
/// what that means in process memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetMemory {
    /// The budget ([`FleetOptions::memory_budget`](crate::FleetOptions::memory_budget));
    /// `None`: load-all.
    pub budget: Option<usize>,
    /// `pinned_bytes + cached_bytes`: what the budget is compared with.
    pub resident_bytes: usize,
    /// Creds and resident kinds, as loaded at open (every key, in load-all mode).
    pub pinned_bytes: usize,
    /// Sessions and sender keys held (budgeted mode).
    pub cached_bytes: usize,
    /// Cached entries written by commits not yet durable: never evicted until flushed.
    pub dirty_bytes: usize,
    /// Cached entries (values, and absences read or committed).
    pub cached_keys: usize,
    /// Keys read from the database on first use since the accounts opened.
    pub cache_loads: u64,
    /// Entries evicted since the accounts opened.
    pub evictions: u64,
}

/// Marks a database read of an account under way until dropped (also when the read's future
/// is dropped), so that nothing of the account is evicted meanwhile.
struct Reading<'a> {
    shared: &'a Shared,
    armed: bool,
}

impl<'a> Reading<'a> {
    fn start(shared: &'a Shared, cache: &mut Cache) -> Self {
        cache.reads += 1;
        Self {
            shared,
            armed: true,
        }
    }

    /// The read ended; `cache` is the account's, locked by the caller.
    fn end(mut self, cache: &mut Cache) {
        cache.reads -= 1;
        self.armed = false;
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Some(cache) = &mut self.shared.memory.write().cache
        {
            cache.reads -= 1;
        }
    }
}

/// `get` of a cached kind: resident entries, the others read from the database (and cached).
/// Returns the slots of the ids that exist, each once, in the order asked.
pub(crate) async fn get(
    shared: &Shared,
    kind: &KeyKind,
    ids: &[KeyId],
) -> Result<Vec<(KeyId, Slot)>> {
    let first = {
        let memory = shared.memory.read();
        cache_of(&memory.cache).lookup(kind, ids)
    };
    let mut found = first.found;
    if first.missing.is_empty() {
        return Ok(found);
    }
    // Look again under the write lock (a commit may have added some) and mark the read.
    let (missing, reading) = {
        let mut memory = shared.memory.write();
        let cache = cache_mut(&mut memory.cache);
        let again = cache.lookup(kind, &first.missing);
        found.extend(again.found);
        if again.missing.is_empty() {
            return Ok(order(ids, found));
        }
        let reading = Reading::start(shared, cache);
        (again.missing, reading)
    };
    let rows = fetch(shared, kind, &missing).await?;
    let loaded = {
        let mut memory = shared.memory.write();
        let cache = cache_mut(&mut memory.cache);
        let (settled, loaded) = cache.settle(kind, missing, rows);
        found.extend(settled);
        reading.end(cache);
        loaded
    };
    shared.telemetry.cache_loads.increment(loaded);
    shared.trim();
    Ok(order(ids, found))
}

/// `list` of a cached kind: the ids in the database, with the resident entries merged over.
pub(crate) async fn list(shared: &Shared, kind: &KeyKind) -> Result<Vec<KeyId>> {
    let reading = {
        let mut memory = shared.memory.write();
        Reading::start(shared, cache_mut(&mut memory.cache))
    };
    let listed = fetch_ids(shared, kind).await?;
    let mut memory = shared.memory.write();
    let cache = cache_mut(&mut memory.cache);
    let ids = cache.merge_ids(kind, listed);
    reading.end(cache);
    Ok(ids)
}

/// `kinds` in budgeted mode: the resident kinds holding keys, and the cached kinds whose
/// `list` is not empty.
pub(crate) async fn kinds(shared: &Shared) -> Result<Vec<KeyKind>> {
    let mut kinds = shared.memory.read().kinds();
    let cached = match &shared.budget {
        Some(budget) => budget.kinds.clone(),
        None => Vec::new(),
    };
    for kind in cached {
        if !list(shared, &kind).await?.is_empty() {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(kinds)
}

fn cache_of(cache: &Option<Cache>) -> &Cache {
    cache.as_ref().expect("a budgeted account has a cache")
}

fn cache_mut(cache: &mut Option<Cache>) -> &mut Cache {
    cache.as_mut().expect("a budgeted account has a cache")
}

/// `found` in the order of `ids` (first occurrence).
fn order(ids: &[KeyId], found: Vec<(KeyId, Slot)>) -> Vec<(KeyId, Slot)> {
    let mut by_id: HashMap<KeyId, Slot> = found.into_iter().collect();
    ids.iter()
        .filter_map(|id| by_id.remove(id).map(|slot| (id.clone(), slot)))
        .collect()
}

/// Reads keys `ids` of `kind` from the database: those that exist, in stored form.
async fn fetch(shared: &Shared, kind: &KeyKind, ids: &[KeyId]) -> Result<HashMap<KeyId, Data>> {
    let instance = shared.options.instance_id.as_str();
    let names: Vec<&str> = ids.iter().map(KeyId::as_str).collect();
    let statement = &shared.statements.get_keys;
    let rows = query(shared, statement, &[&instance, &kind.as_str(), &names]).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0).map_err(backend)?;
        let is_string: bool = row.try_get(1).map_err(backend)?;
        let text: String = row.try_get(2).map_err(backend)?;
        let data = if is_string {
            Data::Text(text)
        } else {
            Data::Json(text)
        };
        out.insert(KeyId::new(id), data);
    }
    Ok(out)
}

/// Reads the ids of `kind` from the database.
async fn fetch_ids(shared: &Shared, kind: &KeyKind) -> Result<Vec<KeyId>> {
    let instance = shared.options.instance_id.as_str();
    let statement = &shared.statements.list_ids;
    let rows = query(shared, statement, &[&instance, &kind.as_str()]).await?;
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map(KeyId::new).map_err(backend))
        .collect()
}

/// Runs one read on a pooled connection, in a read turn, within `operation_timeout`.
async fn query(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>> {
    let timeout = shared.timings.operation_timeout;
    let instance = shared.options.instance_id.as_str();
    let read = async {
        let _turn = read_turn(shared).await?;
        let mut client = Lent::get(&shared.pool, timeout)
            .await
            .map_err(|e| e.into_auth(instance, "reading keys: "))?;
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        let rows = client.query(&statement, params).await.map_err(backend)?;
        client.keep();
        Ok(rows)
    };
    timed(timeout, read).await
}

/// Waits for a turn to read (see [`Budget`]'s `reads`).
async fn read_turn(shared: &Shared) -> Result<Option<tokio::sync::SemaphorePermit<'_>>> {
    match &shared.budget {
        Some(budget) => match budget.reads.acquire().await {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => Err(wa_auth::AuthError::Closed),
        },
        None => Ok(None),
    }
}

async fn timed<T>(timeout: Duration, read: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(timeout, read).await {
        Ok(outcome) => outcome,
        Err(_) => Err(backend_msg(format!(
            "reading keys from the database took longer than operation_timeout ({:.1} s)",
            timeout.as_secs_f64()
        ))),
    }
}

//! `WriteBatch`: the unit of persistence. Creds and any number of key puts and deletes that a
//! backend applies all together or not at all.

use std::collections::BTreeMap;

use crate::creds::AuthCreds;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};

/// A set of changes committed atomically. Within a batch the last change to a key wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    creds: Option<AuthCreds>,
    keys: BTreeMap<KeyKind, BTreeMap<KeyId, Option<KeyValue>>>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the creds to store (replacing the stored creds as a whole).
    pub fn set_creds(&mut self, creds: AuthCreds) -> &mut Self {
        self.creds = Some(creds);
        self
    }

    /// Puts `value` under `kind`/`id`. [`WriteBatch::validate`] checks that they fit.
    pub fn put(&mut self, kind: KeyKind, id: impl Into<KeyId>, value: KeyValue) -> &mut Self {
        self.keys
            .entry(kind)
            .or_default()
            .insert(id.into(), Some(value));
        self
    }

    /// Puts a typed value under its own kind. For [`KeyValue::Other`] use [`WriteBatch::put`].
    pub fn put_value(&mut self, id: impl Into<KeyId>, value: KeyValue) -> Result<&mut Self> {
        let kind = value.kind().ok_or_else(|| {
            AuthError::invalid("batch entry", "an Other value needs an explicit kind")
        })?;
        Ok(self.put(kind, id, value))
    }

    /// Deletes `kind`/`id` (deleting a missing key is not an error).
    pub fn delete(&mut self, kind: KeyKind, id: impl Into<KeyId>) -> &mut Self {
        self.keys.entry(kind).or_default().insert(id.into(), None);
        self
    }

    /// Adds every change of `other` after this batch's (its changes win).
    pub fn merge(&mut self, other: WriteBatch) {
        if other.creds.is_some() {
            self.creds = other.creds;
        }
        for (kind, entries) in other.keys {
            self.keys.entry(kind).or_default().extend(entries);
        }
    }

    /// The creds to store, if any.
    pub fn creds(&self) -> Option<&AuthCreds> {
        self.creds.as_ref()
    }

    /// Every key change: `(kind, id, Some(value))` for a put, `None` for a delete, ordered by
    /// kind then id.
    pub fn entries(&self) -> impl Iterator<Item = (&KeyKind, &KeyId, Option<&KeyValue>)> {
        self.keys
            .iter()
            .flat_map(|(kind, entries)| entries.iter().map(move |(id, v)| (kind, id, v.as_ref())))
    }

    /// The changes to one kind.
    pub fn entries_of(&self, kind: &KeyKind) -> impl Iterator<Item = (&KeyId, Option<&KeyValue>)> {
        self.keys
            .get(kind)
            .into_iter()
            .flat_map(|entries| entries.iter().map(|(id, v)| (id, v.as_ref())))
    }

    /// The change to one key, if the batch has one: `Some(None)` is a delete.
    pub fn get(&self, kind: &KeyKind, id: &KeyId) -> Option<Option<&KeyValue>> {
        self.keys
            .get(kind)
            .and_then(|entries| entries.get(id))
            .map(Option::as_ref)
    }

    /// Number of key changes.
    pub fn key_count(&self) -> usize {
        self.keys.values().map(BTreeMap::len).sum()
    }

    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.creds.is_none() && self.key_count() == 0
    }

    /// Splits the batch into its creds and its key changes.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (
        Option<AuthCreds>,
        BTreeMap<KeyKind, BTreeMap<KeyId, Option<KeyValue>>>,
    ) {
        (self.creds, self.keys)
    }

    /// Checks every entry: ids storable by every backend, values under their own kind. Backends
    /// call this before applying anything, so an invalid batch leaves no trace.
    pub fn validate(&self) -> Result<()> {
        for (kind, id, value) in self.entries() {
            id.validate()?;
            if let Some(value) = value {
                value.check_fits(kind, id)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_change_wins_and_validation_catches_misfits() {
        let mut batch = WriteBatch::new();
        batch.put(KeyKind::LidMapping, "1", KeyValue::LidMapping("a".into()));
        batch.delete(KeyKind::LidMapping, "1");
        assert_eq!(batch.get(&KeyKind::LidMapping, &"1".into()), Some(None));
        batch.put(KeyKind::LidMapping, "1", KeyValue::LidMapping("b".into()));
        assert_eq!(batch.key_count(), 1);
        assert!(batch.validate().is_ok());
        batch.put(KeyKind::Session, "2", KeyValue::LidMapping("c".into()));
        assert!(matches!(batch.validate(), Err(AuthError::Invalid { .. })));
        let mut empty_id = WriteBatch::new();
        empty_id.delete(KeyKind::Session, "");
        assert!(empty_id.validate().is_err());
    }
}

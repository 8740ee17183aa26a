//! wa-signal's store traits over a transaction, so protocol operations read and write through
//! one unit of work.

use async_trait::async_trait;
use wa_signal::store::{
    IdentityKeyStore, PreKeyStore, SenderKeyStore, SessionStore, SignedPreKeyStore,
};
use wa_signal::{
    KeyPair, PreKeyId, PreKeyRecord, PublicKey, SenderKeyName, SenderKeyRecord, SessionRecord,
    SignalAddress, SignalError, SignedPreKeyId, SignedPreKeyRecord,
};

use super::Transaction;
use crate::error::AuthError;
use crate::key::{KeyId, KeyKind, KeyValue};

fn store_error(err: AuthError) -> SignalError {
    SignalError::Store(Box::new(err))
}

fn wrong_type(kind: &KeyKind, id: &KeyId) -> SignalError {
    store_error(AuthError::corrupt_key(
        kind,
        id,
        "",
        "stored value has the wrong type",
    ))
}

impl Transaction<'_> {
    async fn signal_get(
        &mut self,
        kind: KeyKind,
        id: KeyId,
    ) -> wa_signal::Result<Option<(KeyId, KeyValue)>> {
        let value = self.get_one(&kind, &id).await.map_err(store_error)?;
        Ok(value.map(|v| (id, v)))
    }
}

#[async_trait]
impl SessionStore for Transaction<'_> {
    async fn load_session(
        &mut self,
        address: &SignalAddress,
    ) -> wa_signal::Result<Option<SessionRecord>> {
        match self
            .signal_get(KeyKind::Session, KeyId::new(address.to_string()))
            .await?
        {
            Some((_, KeyValue::Session(record))) => Ok(Some(record)),
            Some((id, _)) => Err(wrong_type(&KeyKind::Session, &id)),
            None => Ok(None),
        }
    }

    async fn store_session(
        &mut self,
        address: &SignalAddress,
        record: &SessionRecord,
    ) -> wa_signal::Result<()> {
        self.put(
            KeyKind::Session,
            address.to_string(),
            KeyValue::Session(record.clone()),
        );
        Ok(())
    }
}

#[async_trait]
impl PreKeyStore for Transaction<'_> {
    async fn load_pre_key(&mut self, id: PreKeyId) -> wa_signal::Result<Option<PreKeyRecord>> {
        match self
            .signal_get(KeyKind::PreKey, KeyId::new(id.0.to_string()))
            .await?
        {
            Some((_, KeyValue::PreKey(record))) => Ok(Some(record)),
            Some((id, _)) => Err(wrong_type(&KeyKind::PreKey, &id)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl SignedPreKeyStore for Transaction<'_> {
    async fn load_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
    ) -> wa_signal::Result<Option<SignedPreKeyRecord>> {
        let creds = self.creds();
        if creds.signed_pre_key.key_id == id.0 {
            return Ok(Some(creds.signed_pre_key.to_record()));
        }
        // A recently rotated key, kept for its grace period.
        let retired = crate::signed_pre_key::load_retired(self, id.0)
            .await
            .map_err(store_error)?;
        Ok(retired.map(|r| r.key.to_record()))
    }
}

#[async_trait]
impl IdentityKeyStore for Transaction<'_> {
    async fn identity_key_pair(&mut self) -> wa_signal::Result<KeyPair> {
        Ok(self.creds().signed_identity_key.clone())
    }

    async fn local_registration_id(&mut self) -> wa_signal::Result<u32> {
        Ok(self.creds().registration_id)
    }

    async fn get_identity(
        &mut self,
        address: &SignalAddress,
    ) -> wa_signal::Result<Option<PublicKey>> {
        match self
            .signal_get(KeyKind::IdentityKey, KeyId::new(address.to_string()))
            .await?
        {
            Some((_, KeyValue::IdentityKey(key))) => Ok(Some(key)),
            Some((id, _)) => Err(wrong_type(&KeyKind::IdentityKey, &id)),
            None => Ok(None),
        }
    }

    async fn save_identity(
        &mut self,
        address: &SignalAddress,
        identity: &PublicKey,
    ) -> wa_signal::Result<bool> {
        let previous = self.get_identity(address).await?;
        if previous.as_ref() != Some(identity) {
            self.put(
                KeyKind::IdentityKey,
                address.to_string(),
                KeyValue::IdentityKey(*identity),
            );
        }
        Ok(previous.is_some_and(|p| &p != identity))
    }
}

#[async_trait]
impl SenderKeyStore for Transaction<'_> {
    async fn load_sender_key(
        &mut self,
        name: &SenderKeyName,
    ) -> wa_signal::Result<Option<SenderKeyRecord>> {
        match self
            .signal_get(KeyKind::SenderKey, KeyId::new(name.to_string()))
            .await?
        {
            Some((_, KeyValue::SenderKey(record))) => Ok(Some(record)),
            Some((id, _)) => Err(wrong_type(&KeyKind::SenderKey, &id)),
            None => Ok(None),
        }
    }

    async fn store_sender_key(
        &mut self,
        name: &SenderKeyName,
        record: &SenderKeyRecord,
    ) -> wa_signal::Result<()> {
        self.put(
            KeyKind::SenderKey,
            name.to_string(),
            KeyValue::SenderKey(record.clone()),
        );
        Ok(())
    }
}

//! Addresses of Signal sessions and sender keys, in the string forms WhatsApp stores use as key ids.

use std::fmt;

pub use wa_proto::jid::SignalAddress;

/// The name of a sender key: a group and the sending device. Displays as
/// `<group>::<user>::<device>`, the sender-key key id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderKeyName {
    group_id: String,
    sender: SignalAddress,
}

impl SenderKeyName {
    /// A new sender key name.
    pub fn new(group_id: impl Into<String>, sender: SignalAddress) -> Self {
        Self {
            group_id: group_id.into(),
            sender,
        }
    }

    /// Parses `<group>::<user>::<device>` (the last two `::` are the separators).
    pub fn parse(s: &str) -> Option<Self> {
        let (rest, device) = s.rsplit_once("::")?;
        let (group, user) = rest.rsplit_once("::")?;
        if group.is_empty() || user.is_empty() {
            return None;
        }
        Some(Self::new(
            group,
            SignalAddress::new(user, device.parse().ok()?).ok()?,
        ))
    }

    /// The group id (a group JID such as `120363025246125888@g.us`).
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The sending device.
    pub fn sender(&self) -> &SignalAddress {
        &self.sender
    }
}

impl fmt::Display for SenderKeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}::{}::{}",
            self.group_id,
            self.sender.name(),
            self.sender.device_id()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_key_ids() {
        for id in [
            "4915112345678.0",
            "100000000000001_1.17",
            "210987654321098_1.3",
        ] {
            assert_eq!(SignalAddress::parse(id).unwrap().to_string(), id);
        }
        assert!(SignalAddress::parse("nodevice").is_err());
        assert!(SignalAddress::parse(".3").is_err());
        let name = "120363025246125888@g.us::15550100001::17";
        assert_eq!(SenderKeyName::parse(name).unwrap().to_string(), name);
        let legacy = "4915112345678-1612345678@g.us::4915112345678::0";
        let parsed = SenderKeyName::parse(legacy).unwrap();
        assert_eq!(parsed.group_id(), "4915112345678-1612345678@g.us");
        assert_eq!(parsed.sender().device_id(), 0);
    }
}

//! WhatsApp JIDs (`user[_agent][:device]@server`) and the Signal addresses derived from them.
//!
//! | form | example |
//! |---|---|
//! | phone-number (PN) user | `4915112345678@s.whatsapp.net` |
//! | PN device | `4915112345678:5@s.whatsapp.net` |
//! | LID user / device | `100000000000001@lid`, `100000000000001:17@lid` |
//! | hosted PN / LID device | `15550100001:99@hosted`, `100000000000001:99@hosted.lid` |
//! | agent form | `15550100001_1:3@s.whatsapp.net` |
//! | group, legacy group | `120363025246125888@g.us`, `4915112345678-1612345678@g.us` |
//! | broadcast, status | `1612345678@broadcast`, `status@broadcast` |
//! | legacy user, newsletter, call, bot | `0@c.us`, `120363123456789012@newsletter`, `…@call`, `…@bot` |
//! | Messenger, interop | `user:device@msgr`, `integrator-user:device@interop` |
//! | a server itself | `@s.whatsapp.net` (also parsed from `s.whatsapp.net`) |
//!
//! Formatting follows Baileys' `jidEncode`: device 0 and agent 0 are not written, so
//! `user:0@s.whatsapp.net` parses to the same [`Jid`] as `user@s.whatsapp.net` and formats as
//! the latter. Messenger JIDs always carry their device and interop JIDs their integrator and
//! device, as the binary format writes them.
//!
//! A [`SignalAddress`] is what Baileys 7 uses as the session key id: `user.device` for PN users
//! and `user_<domain>.device` otherwise (`<lid>_1.3`, `<user>_128.99` for hosted, `<lid>_129.99`
//! for hosted LID).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The server (domain) part of a JID.
///
/// Equality, ordering and hashing go by [`Server::as_str`], so `Server::Other("lid".into())`
/// equals [`Server::Lid`]; [`Server::from_name`] always picks the named variant.
#[derive(Clone)]
#[non_exhaustive]
pub enum Server {
    /// `s.whatsapp.net`: phone-number (PN) users and their devices.
    Pn,
    /// `lid`: LID (linked identity) users and their devices.
    Lid,
    /// `g.us`: groups.
    Group,
    /// `broadcast`: broadcast lists and `status@broadcast`.
    Broadcast,
    /// `hosted`: hosted (business API) PN devices.
    Hosted,
    /// `hosted.lid`: hosted LID devices.
    HostedLid,
    /// `c.us`: the legacy user server.
    LegacyUser,
    /// `newsletter`: channels.
    Newsletter,
    /// `call`: call links and ids.
    Call,
    /// `msgr`: Messenger users.
    Messenger,
    /// `interop`: third-party interop users.
    Interop,
    /// `bot`: bots.
    Bot,
    /// Any other server name.
    Other(String),
}

impl Server {
    /// The server for a name, picking the named variant for every known name.
    pub fn from_name(name: &str) -> Server {
        match name {
            "s.whatsapp.net" => Server::Pn,
            "lid" => Server::Lid,
            "g.us" => Server::Group,
            "broadcast" => Server::Broadcast,
            "hosted" => Server::Hosted,
            "hosted.lid" => Server::HostedLid,
            "c.us" => Server::LegacyUser,
            "newsletter" => Server::Newsletter,
            "call" => Server::Call,
            "msgr" => Server::Messenger,
            "interop" => Server::Interop,
            "bot" => Server::Bot,
            other => Server::Other(other.to_owned()),
        }
    }

    /// The server name as written after the `@`.
    pub fn as_str(&self) -> &str {
        match self {
            Server::Pn => "s.whatsapp.net",
            Server::Lid => "lid",
            Server::Group => "g.us",
            Server::Broadcast => "broadcast",
            Server::Hosted => "hosted",
            Server::HostedLid => "hosted.lid",
            Server::LegacyUser => "c.us",
            Server::Newsletter => "newsletter",
            Server::Call => "call",
            Server::Messenger => "msgr",
            Server::Interop => "interop",
            Server::Bot => "bot",
            Server::Other(name) => name,
        }
    }

    /// The domain type the binary format and Signal addresses use for this server: 1 for
    /// `lid`, 128 for `hosted`, 129 for `hosted.lid`, `None` for the others (whose domain type
    /// is the JID's agent, 0 when there is none).
    pub fn domain_type(&self) -> Option<u8> {
        match self.as_str() {
            "lid" => Some(1),
            "hosted" => Some(128),
            "hosted.lid" => Some(129),
            _ => None,
        }
    }

    /// The server a device JID's domain type stands for: 0 `s.whatsapp.net`, 1 `lid`,
    /// 128 `hosted`, 129 `hosted.lid`; `None` for any other value.
    pub fn from_domain_type(domain_type: u8) -> Option<Server> {
        match domain_type {
            0 => Some(Server::Pn),
            1 => Some(Server::Lid),
            128 => Some(Server::Hosted),
            129 => Some(Server::HostedLid),
            _ => None,
        }
    }

    /// The LID server paired with a phone-number server: `s.whatsapp.net` → `lid`, `hosted` →
    /// `hosted.lid`; `None` for every other server. A user known by phone number on the first
    /// is the same user as its LID on the second.
    pub fn lid_counterpart(&self) -> Option<Server> {
        match self.as_str() {
            "s.whatsapp.net" => Some(Server::Lid),
            "hosted" => Some(Server::HostedLid),
            _ => None,
        }
    }
}

impl PartialEq for Server {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Server {}

impl Hash for Server {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Server {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Server {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Server({:?})", self.as_str())
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WhatsApp JID.
///
/// Fields are private so a `Jid` is always in the form [`Jid::parse`] accepts: the user holds
/// no `@` or `:` (nor `_`, which introduces the agent); the server is non-empty and holds no `@`.
/// `Jid::parse(&jid.to_string()) == Ok(jid)` for every `Jid`.
///
/// ```
/// use wa_proto::jid::{Jid, Server};
///
/// let jid: Jid = "100000000000001:17@lid".parse()?;
/// assert!(jid.is_lid());
/// assert_eq!(jid.device(), 17);
/// assert_eq!(jid.to_non_device().to_string(), "100000000000001@lid");
/// assert_eq!(jid.signal_address()?.to_string(), "100000000000001_1.17");
///
/// let pn = Jid::new("4915112345678", Server::Pn)?.with_device(5);
/// assert_eq!(pn.to_string(), "4915112345678:5@s.whatsapp.net");
/// assert_eq!(pn.signal_address()?.to_string(), "4915112345678.5");
/// # Ok::<(), wa_proto::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    user: String,
    agent: u8,
    device: u16,
    integrator: u16,
    server: Server,
}

impl Jid {
    /// A JID `user@server` without agent or device. The user may be empty (a server JID).
    pub fn new(user: impl Into<String>, server: Server) -> Result<Jid> {
        let user = user.into();
        let server = normalize_server(server);
        check_user(&user).map_err(|reason| Error::InvalidJid {
            input: format!("{user}@{server}"),
            reason,
        })?;
        check_server(server.as_str()).map_err(|reason| Error::InvalidJid {
            input: format!("{user}@{server}"),
            reason,
        })?;
        Ok(Jid {
            user,
            agent: 0,
            device: 0,
            integrator: 0,
            server,
        })
    }

    /// A phone-number user JID: `<number>@s.whatsapp.net`.
    pub fn pn(user: impl Into<String>) -> Result<Jid> {
        Jid::new(user, Server::Pn)
    }

    /// A LID user JID: `<lid>@lid`.
    pub fn lid(user: impl Into<String>) -> Result<Jid> {
        Jid::new(user, Server::Lid)
    }

    /// A group JID: `<id>@g.us`.
    pub fn group(id: impl Into<String>) -> Result<Jid> {
        Jid::new(id, Server::Group)
    }

    /// The JID of a server itself (empty user), e.g. `@s.whatsapp.net`, the usual `to` of an
    /// `iq` sent to WhatsApp.
    pub fn server_jid(server: Server) -> Jid {
        Jid {
            user: String::new(),
            agent: 0,
            device: 0,
            integrator: 0,
            server: normalize_server(server),
        }
    }

    /// `status@broadcast`.
    pub fn status_broadcast() -> Jid {
        Jid {
            user: "status".to_owned(),
            agent: 0,
            device: 0,
            integrator: 0,
            server: Server::Broadcast,
        }
    }

    /// This JID with `device` (0 = the main device, not written when formatting).
    #[must_use]
    pub fn with_device(mut self, device: u16) -> Jid {
        self.device = device;
        self
    }

    /// This JID with `agent` (0 = none, not written when formatting).
    #[must_use]
    pub fn with_agent(mut self, agent: u8) -> Jid {
        self.agent = agent;
        self
    }

    /// This JID with an interop `integrator` id. Only `@interop` JIDs have one: for any other
    /// server the JID is returned unchanged.
    #[must_use]
    pub fn with_integrator(mut self, integrator: u16) -> Jid {
        if self.server == Server::Interop {
            self.integrator = integrator;
        }
        self
    }

    /// Parses any of the forms in the [module docs](self). A string without `@` is a server JID.
    pub fn parse(input: &str) -> Result<Jid> {
        parse_jid(input).map_err(|reason| Error::InvalidJid {
            input: input.to_owned(),
            reason,
        })
    }

    /// The user part (phone number, LID, group id, ...), without agent or device. Empty for a
    /// server JID.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The device number; 0 is the main device (or no device).
    pub fn device(&self) -> u16 {
        self.device
    }

    /// The agent (0 = none).
    pub fn agent(&self) -> u8 {
        self.agent
    }

    /// The interop integrator id (0 = none).
    pub fn integrator(&self) -> u16 {
        self.integrator
    }

    /// The domain type: the server's ([`Server::domain_type`]) for `lid`, `hosted` and
    /// `hosted.lid`, otherwise the agent (0 for plain PN JIDs). This is the byte a device JID
    /// is encoded with and the `_<n>` suffix of a Signal address.
    pub fn domain_type(&self) -> u8 {
        self.server.domain_type().unwrap_or(self.agent)
    }

    /// `true` for `@s.whatsapp.net` JIDs (phone-number users and their devices).
    pub fn is_pn(&self) -> bool {
        self.server == Server::Pn
    }

    /// `true` for `@lid` JIDs.
    pub fn is_lid(&self) -> bool {
        self.server == Server::Lid
    }

    /// `true` for `@hosted` JIDs.
    pub fn is_hosted_pn(&self) -> bool {
        self.server == Server::Hosted
    }

    /// `true` for `@hosted.lid` JIDs.
    pub fn is_hosted_lid(&self) -> bool {
        self.server == Server::HostedLid
    }

    /// `true` for `@hosted` and `@hosted.lid` JIDs.
    pub fn is_hosted(&self) -> bool {
        self.is_hosted_pn() || self.is_hosted_lid()
    }

    /// `true` for JIDs naming a user or one of their devices: PN, LID and hosted forms.
    pub fn is_user(&self) -> bool {
        !self.user.is_empty() && (self.is_pn() || self.is_lid() || self.is_hosted())
    }

    /// `true` for `@g.us` JIDs.
    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    /// `true` for `@broadcast` JIDs (including `status@broadcast`).
    pub fn is_broadcast(&self) -> bool {
        self.server == Server::Broadcast
    }

    /// `true` for `status@broadcast`.
    pub fn is_status_broadcast(&self) -> bool {
        self.is_broadcast() && self.user == "status"
    }

    /// `true` for `@newsletter` JIDs.
    pub fn is_newsletter(&self) -> bool {
        self.server == Server::Newsletter
    }

    /// `true` for `@bot` JIDs.
    pub fn is_bot(&self) -> bool {
        self.server == Server::Bot
    }

    /// `true` for a server JID (empty user), e.g. `@s.whatsapp.net`.
    pub fn is_server(&self) -> bool {
        self.user.is_empty()
    }

    /// `true` when this JID names a specific device other than the main one.
    pub fn is_device(&self) -> bool {
        self.device != 0
    }

    /// The same user without agent, device or integrator (`user@server`).
    #[must_use]
    pub fn to_non_device(&self) -> Jid {
        Jid {
            user: self.user.clone(),
            agent: 0,
            device: 0,
            integrator: 0,
            server: self.server.clone(),
        }
    }

    /// Baileys' `jidNormalizedUser`: [`to_non_device`](Self::to_non_device), with the legacy
    /// `c.us` server mapped to `s.whatsapp.net`.
    #[must_use]
    pub fn normalized_user(&self) -> Jid {
        let mut jid = self.to_non_device();
        if jid.server == Server::LegacyUser {
            jid.server = Server::Pn;
        }
        jid
    }

    /// `true` when both JIDs name the same user on the same server, whatever their devices.
    pub fn same_user(&self, other: &Jid) -> bool {
        self.user == other.user && self.server == other.server
    }

    /// The Signal address of this device, as Baileys 7 keys sessions: `user.device` for PN
    /// JIDs, `user_<domain type>.device` otherwise (see [`Jid::domain_type`]).
    ///
    /// Fails for a JID without user, for a user holding `.` (libsignal refuses such names),
    /// and for device 99 outside the hosted servers (Baileys rejects those as invalid).
    pub fn signal_address(&self) -> Result<SignalAddress> {
        let fail = |reason| Error::InvalidSignalAddress {
            input: self.to_string(),
            reason,
        };
        if self.user.is_empty() {
            return Err(fail("the JID has no user"));
        }
        if self.device == 99 && !self.is_hosted() {
            return Err(fail("device 99 is reserved for hosted JIDs"));
        }
        if self.user.contains('.') {
            return Err(fail("a Signal address name cannot hold '.'"));
        }
        let name = match self.domain_type() {
            0 => self.user.clone(),
            domain => format!("{}_{domain}", self.user),
        };
        Ok(SignalAddress {
            name,
            device: u32::from(self.device),
        })
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.server {
            Server::Interop => {
                write!(f, "{}-{}", self.integrator, self.user)?;
                if self.agent != 0 {
                    write!(f, "_{}", self.agent)?;
                }
                write!(f, ":{}@interop", self.device)
            }
            Server::Messenger => {
                f.write_str(&self.user)?;
                if self.agent != 0 {
                    write!(f, "_{}", self.agent)?;
                }
                write!(f, ":{}@msgr", self.device)
            }
            _ => {
                f.write_str(&self.user)?;
                if self.agent != 0 {
                    write!(f, "_{}", self.agent)?;
                }
                if self.device != 0 {
                    write!(f, ":{}", self.device)?;
                }
                write!(f, "@{}", self.server)
            }
        }
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({self})")
    }
}

impl FromStr for Jid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Jid> {
        Jid::parse(s)
    }
}

impl TryFrom<&str> for Jid {
    type Error = Error;

    fn try_from(s: &str) -> Result<Jid> {
        Jid::parse(s)
    }
}

impl From<Jid> for String {
    fn from(jid: Jid) -> String {
        jid.to_string()
    }
}

impl From<&Jid> for String {
    fn from(jid: &Jid) -> String {
        jid.to_string()
    }
}

/// A Signal protocol address: a name and a device id, written `name.device`. It is the key id
/// of sessions (and the middle of sender-key ids) in Baileys' key store.
///
/// ```
/// use wa_proto::jid::SignalAddress;
///
/// let address: SignalAddress = "210987654321098_1.3".parse()?;
/// assert_eq!(address.name(), "210987654321098_1");
/// assert_eq!(address.device_id(), 3);
/// assert_eq!(address.to_jid()?.to_string(), "210987654321098:3@lid");
/// # Ok::<(), wa_proto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalAddress {
    name: String,
    device: u32,
}

impl SignalAddress {
    /// An address from its parts. The name must be non-empty and hold no `.` (which would make
    /// the written form ambiguous).
    pub fn new(name: impl Into<String>, device: u32) -> Result<SignalAddress> {
        let name = name.into();
        if name.is_empty() || name.contains('.') {
            return Err(Error::InvalidSignalAddress {
                input: format!("{name}.{device}"),
                reason: "the name must be non-empty and hold no '.'",
            });
        }
        Ok(SignalAddress { name, device })
    }

    /// Parses `name.device`.
    pub fn parse(input: &str) -> Result<SignalAddress> {
        let fail = |reason| Error::InvalidSignalAddress {
            input: input.to_owned(),
            reason,
        };
        let (name, device) = input
            .rsplit_once('.')
            .ok_or_else(|| fail("no '.' before the device"))?;
        let device = parse_decimal(device)
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| fail("the device is not a decimal u32"))?;
        SignalAddress::new(name, device).map_err(|_| fail("the name must be non-empty"))
    }

    /// The name: the JID user, with `_<domain type>` for non-PN domains.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.device
    }

    /// The device JID this address was derived from (the inverse of [`Jid::signal_address`]):
    /// `user_1` → `@lid`, `user_128` → `@hosted`, `user_129` → `@hosted.lid`, `user_<n>` for
    /// another `n` → the agent form on `@s.whatsapp.net`, a bare user → `@s.whatsapp.net`.
    pub fn to_jid(&self) -> Result<Jid> {
        let fail = |reason| Error::InvalidSignalAddress {
            input: self.to_string(),
            reason,
        };
        let device = u16::try_from(self.device).map_err(|_| fail("device does not fit a JID"))?;
        let (user, domain) = self.user_and_domain_type().map_err(fail)?;
        let jid = match Server::from_domain_type(domain) {
            Some(server) => Jid::new(user, server),
            None => Jid::new(user, Server::Pn).map(|j| j.with_agent(domain)),
        };
        let jid = jid.map_err(|_| fail("the name is not a JID user"))?;
        Ok(jid.with_device(device))
    }
}

impl SignalAddress {
    /// The name split into the JID user and the domain type (0 when there is no `_` suffix).
    fn user_and_domain_type(&self) -> Result<(&str, u8), &'static str> {
        let (user, domain) = match self.name.rsplit_once('_') {
            Some((user, domain)) => {
                let domain = parse_decimal(domain)
                    .and_then(|d| u8::try_from(d).ok())
                    .filter(|d| *d != 0)
                    .ok_or("the '_' suffix is not a non-zero domain type")?;
                (user, domain)
            }
            None => (self.name.as_str(), 0),
        };
        if user.is_empty() {
            return Err("no user before the domain type");
        }
        Ok((user, domain))
    }

    /// The phone number of an address of a phone-number device, plain (`user.device`) or hosted
    /// (`user_128.device`); `None` for LID, agent and any other addresses.
    pub fn phone_number_user(&self) -> Option<&str> {
        let (user, domain) = self.user_and_domain_type().ok()?;
        Server::from_domain_type(domain)?.lid_counterpart()?;
        Some(user)
    }

    /// The address of the same device under its LID user `lid`, for an address of a
    /// phone-number device: `pn.3` → `lid_1.3`, hosted `pn_128.99` → `lid_129.99` (see
    /// [`Server::lid_counterpart`]). `None` for any other address, or when `lid` cannot be a
    /// Signal address name.
    pub fn to_lid(&self, lid: &str) -> Option<SignalAddress> {
        let (_, domain) = self.user_and_domain_type().ok()?;
        let lid_server = Server::from_domain_type(domain)?.lid_counterpart()?;
        let lid_domain = lid_server.domain_type()?;
        if lid.is_empty() || check_user(lid).is_err() {
            return None;
        }
        SignalAddress::new(format!("{lid}_{lid_domain}"), self.device).ok()
    }
}

impl fmt::Display for SignalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.device)
    }
}

impl FromStr for SignalAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<SignalAddress> {
        SignalAddress::parse(s)
    }
}

fn normalize_server(server: Server) -> Server {
    match server {
        Server::Other(name) => Server::from_name(&name),
        known => known,
    }
}

fn check_server(server: &str) -> Result<(), &'static str> {
    if server.is_empty() {
        return Err("empty server");
    }
    if server.contains('@') {
        return Err("more than one '@'");
    }
    Ok(())
}

fn check_user(user: &str) -> Result<(), &'static str> {
    if user.contains('@') {
        return Err("the user holds '@'");
    }
    if user.contains(':') {
        return Err("the user holds ':' (a device belongs in with_device)");
    }
    if user.contains('_') {
        return Err("the user holds '_' (an agent belongs in with_agent)");
    }
    Ok(())
}

fn parse_jid(input: &str) -> Result<Jid, &'static str> {
    let Some((user_part, server)) = input.split_once('@') else {
        // A bare known server name, e.g. the `s.whatsapp.net` token in an `iq`'s `to`.
        return match Server::from_name(input) {
            Server::Other(_) => Err("no '@' and not a known server name"),
            server => Ok(Jid::server_jid(server)),
        };
    };
    check_server(server)?;
    let server = Server::from_name(server);

    let (rest, device) = match user_part.rsplit_once(':') {
        Some((rest, device)) => {
            let device = parse_decimal(device)
                .and_then(|d| u16::try_from(d).ok())
                .ok_or("the device is not a decimal u16")?;
            (rest, device)
        }
        None => (user_part, 0),
    };

    let mut integrator = 0;
    let mut rest = rest;
    if server == Server::Interop {
        let (integ, user) = rest
            .split_once('-')
            .ok_or("an interop JID is integrator-user:device")?;
        integrator = parse_decimal(integ)
            .and_then(|d| u16::try_from(d).ok())
            .ok_or("the interop integrator is not a decimal u16")?;
        rest = user;
    }

    let (user, agent) = match rest.rsplit_once('_') {
        Some((user, agent)) => {
            let agent = parse_decimal(agent)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or("the agent is not a decimal u8")?;
            (user, agent)
        }
        None => (rest, 0),
    };
    check_user(user)?;
    Ok(Jid {
        user: user.to_owned(),
        agent,
        device,
        integrator,
        server,
    })
}

/// A canonical non-negative decimal (`0`, or digits without a leading zero), up to u64.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_formats_every_form() {
        let cases = [
            (
                "4915112345678@s.whatsapp.net",
                "4915112345678",
                0,
                0,
                "s.whatsapp.net",
            ),
            (
                "4915112345678:5@s.whatsapp.net",
                "4915112345678",
                0,
                5,
                "s.whatsapp.net",
            ),
            ("100000000000001:17@lid", "100000000000001", 0, 17, "lid"),
            ("15550100001:99@hosted", "15550100001", 0, 99, "hosted"),
            (
                "100000000000001:99@hosted.lid",
                "100000000000001",
                0,
                99,
                "hosted.lid",
            ),
            (
                "15550100001_1:3@s.whatsapp.net",
                "15550100001",
                1,
                3,
                "s.whatsapp.net",
            ),
            (
                "120363025246125888@g.us",
                "120363025246125888",
                0,
                0,
                "g.us",
            ),
            (
                "4915112345678-1612345678@g.us",
                "4915112345678-1612345678",
                0,
                0,
                "g.us",
            ),
            ("status@broadcast", "status", 0, 0, "broadcast"),
            ("0@c.us", "0", 0, 0, "c.us"),
            (
                "120363123456789012@newsletter",
                "120363123456789012",
                0,
                0,
                "newsletter",
            ),
            ("abcdef@call", "abcdef", 0, 0, "call"),
            ("867051314767696@bot", "867051314767696", 0, 0, "bot"),
            ("1234:3@msgr", "1234", 0, 3, "msgr"),
            ("@s.whatsapp.net", "", 0, 0, "s.whatsapp.net"),
        ];
        for (input, user, agent, device, server) in cases {
            let j = jid(input);
            assert_eq!(j.user(), user, "{input}");
            assert_eq!(j.agent(), agent, "{input}");
            assert_eq!(j.device(), device, "{input}");
            assert_eq!(j.server().as_str(), server, "{input}");
            assert_eq!(j.to_string(), input, "{input}");
        }
    }

    #[test]
    fn interop_form() {
        let j = jid("7-12345:2@interop");
        assert_eq!((j.integrator(), j.user(), j.device()), (7, "12345", 2));
        assert_eq!(j.to_string(), "7-12345:2@interop");
        assert!(Jid::parse("12345@interop").is_err());
        // The integrator and device are always written, as the binary format does.
        let bare = Jid::new("9", Server::Interop).unwrap();
        assert_eq!(bare.to_string(), "0-9:0@interop");
        assert_eq!(jid(&bare.to_string()), bare);
        let server = Jid::server_jid(Server::Interop);
        assert_eq!(jid(&server.to_string()), server);
    }

    #[test]
    fn device_zero_is_not_written() {
        let j = jid("15550100001:0@s.whatsapp.net");
        assert_eq!(j, jid("15550100001@s.whatsapp.net"));
        assert_eq!(j.to_string(), "15550100001@s.whatsapp.net");
        // Messenger JIDs keep it, as the binary format writes it.
        assert_eq!(jid("1:0@msgr").to_string(), "1:0@msgr");
    }

    #[test]
    fn bare_server_names_are_server_jids() {
        let j = jid("s.whatsapp.net");
        assert!(j.is_server() && j.is_pn());
        assert_eq!(j, Jid::server_jid(Server::Pn));
        assert_eq!(j.to_string(), "@s.whatsapp.net");
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "@",
            "4915112345678",
            "example.com",
            "user@",
            "a@b@c",
            "user:x@s.whatsapp.net",
            "user:65536@s.whatsapp.net",
            "user:05@s.whatsapp.net",
            "user:@s.whatsapp.net",
            "a:b:1@s.whatsapp.net",
            "user_x@s.whatsapp.net",
            "user_256:1@s.whatsapp.net",
            "a_b_1@s.whatsapp.net",
        ] {
            assert!(
                matches!(Jid::parse(bad), Err(Error::InvalidJid { .. })),
                "{bad:?}"
            );
        }
        assert!(Jid::pn("1:2").is_err());
        assert!(Jid::pn("1_2").is_err());
        assert!(Jid::pn("a@b").is_err());
        assert!(Jid::new("x", Server::Other(String::new())).is_err());
    }

    #[test]
    fn server_other_is_normalized() {
        let j = Jid::new("1", Server::Other("lid".into())).unwrap();
        assert!(j.is_lid());
        assert!(matches!(j.server(), Server::Lid));
        assert_eq!(Server::Other("g.us".into()), Server::Group);
    }

    #[test]
    fn pn_lid_helpers() {
        let pn = jid("4915112345678:5@s.whatsapp.net");
        assert!(pn.is_pn() && pn.is_user() && pn.is_device() && !pn.is_lid());
        assert_eq!(pn.to_non_device(), jid("4915112345678@s.whatsapp.net"));
        assert!(pn.same_user(&jid("4915112345678@s.whatsapp.net")));
        assert!(!pn.same_user(&jid("4915112345678@lid")));
        assert_eq!(
            jid("123_1:4@c.us").normalized_user().to_string(),
            "123@s.whatsapp.net"
        );
        let lid = jid("100000000000001@lid");
        assert!(lid.is_lid() && lid.is_user() && !lid.is_device());
        assert!(jid("1:99@hosted").is_hosted() && jid("1:99@hosted.lid").is_hosted_lid());
        assert!(jid("status@broadcast").is_status_broadcast());
        assert!(jid("1@g.us").is_group() && !jid("1@g.us").is_user());
        assert!(jid("1@newsletter").is_newsletter() && jid("1@bot").is_bot());
    }

    #[test]
    fn signal_addresses_follow_baileys_7() {
        let cases = [
            ("4915112345678@s.whatsapp.net", "4915112345678.0"),
            ("4915112345678:5@s.whatsapp.net", "4915112345678.5"),
            ("15550100001:17@s.whatsapp.net", "15550100001.17"),
            ("100000000000001@lid", "100000000000001_1.0"),
            ("210987654321098:3@lid", "210987654321098_1.3"),
            ("15550100001:99@hosted", "15550100001_128.99"),
            ("100000000000001:99@hosted.lid", "100000000000001_129.99"),
            ("15550100001_1:3@s.whatsapp.net", "15550100001_1.3"),
        ];
        for (input, address) in cases {
            let a = jid(input).signal_address().unwrap();
            assert_eq!(a.to_string(), address, "{input}");
            assert_eq!(SignalAddress::parse(address).unwrap(), a);
        }
        assert!(jid("@s.whatsapp.net").signal_address().is_err());
        assert!(jid("a.b@g.us").signal_address().is_err());
        assert!(jid("1:99@s.whatsapp.net").signal_address().is_err());
    }

    #[test]
    fn signal_address_back_to_jid() {
        for (address, expected) in [
            ("4915112345678.0", "4915112345678@s.whatsapp.net"),
            ("4915112345678.5", "4915112345678:5@s.whatsapp.net"),
            ("100000000000001_1.0", "100000000000001@lid"),
            ("210987654321098_1.3", "210987654321098:3@lid"),
            ("15550100001_128.99", "15550100001:99@hosted"),
            ("100000000000001_129.99", "100000000000001:99@hosted.lid"),
            ("15550100001_5.3", "15550100001_5:3@s.whatsapp.net"),
        ] {
            let jid = SignalAddress::parse(address).unwrap().to_jid().unwrap();
            assert_eq!(jid.to_string(), expected);
            assert_eq!(jid.signal_address().unwrap().to_string(), address);
        }
        for bad in [
            "",
            "1",
            ".1",
            "1.x",
            "1.01",
            "a_b.1",
            "1.99999999999",
            "1_0.2",
            "_1.2",
        ] {
            let parsed = SignalAddress::parse(bad);
            assert!(
                parsed.is_err() || parsed.unwrap().to_jid().is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn phone_number_addresses_map_to_their_lid_counterparts() {
        for (address, pn, lid_address) in [
            ("4915112345678.0", "4915112345678", "210987654321098_1.0"),
            ("4915112345678.5", "4915112345678", "210987654321098_1.5"),
            (
                "15550100001_128.99",
                "15550100001",
                "210987654321098_129.99",
            ),
        ] {
            let address = SignalAddress::parse(address).unwrap();
            assert_eq!(address.phone_number_user(), Some(pn), "{address}");
            let lid = address.to_lid("210987654321098").unwrap();
            assert_eq!(lid.to_string(), lid_address);
            // The same device, on the LID server paired with the address's own server.
            let (pn_jid, lid_jid) = (address.to_jid().unwrap(), lid.to_jid().unwrap());
            assert_eq!(lid_jid.device(), pn_jid.device());
            assert_eq!(
                pn_jid.server().lid_counterpart().as_ref(),
                Some(lid_jid.server())
            );
        }
        // LID, hosted LID and agent addresses have no LID counterpart.
        for other in [
            "210987654321098_1.3",
            "100000000000001_129.99",
            "15550100001_5.3",
        ] {
            let address = SignalAddress::parse(other).unwrap();
            assert_eq!(address.phone_number_user(), None, "{other}");
            assert_eq!(address.to_lid("210987654321098"), None, "{other}");
        }
        // A LID that cannot be a JID user gives no address.
        let pn = SignalAddress::parse("4915112345678.0").unwrap();
        for bad in ["", "1.2", "1_2", "1:2", "1@lid"] {
            assert_eq!(pn.to_lid(bad), None, "{bad:?}");
        }
        assert_eq!(Server::Group.lid_counterpart(), None);
        assert_eq!(Server::Lid.lid_counterpart(), None);
    }

    #[test]
    fn canonical_decimals_only() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("17"), Some(17));
        assert_eq!(parse_decimal("017"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("+1"), None);
        assert_eq!(parse_decimal("99999999999999999999"), None);
    }
}

//! How a string holding `@` is laid out as a JID on the wire.

use crate::jid::parse_decimal;

/// The wire layout chosen for a JID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireJid<'a> {
    /// `JID_PAIR user server` (user may be empty).
    Pair { user: &'a str, server: &'a str },
    /// `AD_JID domain device user`.
    Device {
        domain: u8,
        device: u8,
        user: &'a str,
    },
    /// `FB_JID user device(u16) server`.
    Messenger {
        user: &'a str,
        device: u16,
        server: &'a str,
    },
    /// `INTEROP_JID user device(u16) integrator(u16) server`.
    Interop {
        user: &'a str,
        device: u16,
        integrator: u16,
        server: &'a str,
    },
}

/// The layout for `s`, or `None` when `s` is not written as a JID (no `@`, an empty server, or
/// a server holding another `@`: those are written raw, which decodes back to the same string).
///
/// The choice follows Baileys' `jidDecode` + `writeJid` for every JID Baileys writes
/// (`user[_agent]:device@server` with a device → `AD_JID`, with the agent as domain type on
/// `s.whatsapp.net`), but only takes a device or agent that is a canonical decimal in range;
/// anything else stays in the user part of a `JID_PAIR`, so the string survives unchanged.
pub(super) fn classify(s: &str) -> Option<WireJid<'_>> {
    let (user_part, server) = s.split_once('@')?;
    if server.is_empty() || server.contains('@') {
        return None;
    }
    let split_device = || {
        let (rest, device) = user_part.rsplit_once(':')?;
        Some((rest, parse_decimal(device)?))
    };
    let jid = match server {
        "s.whatsapp.net" | "lid" | "hosted" | "hosted.lid" => {
            split_device().and_then(|(rest, device)| {
                let device = u8::try_from(device).ok()?;
                let (user, domain) = match server {
                    "lid" => (rest, 1),
                    "hosted" => (rest, 128),
                    "hosted.lid" => (rest, 129),
                    _ => agent_split(rest).unwrap_or((rest, 0)),
                };
                Some(WireJid::Device {
                    domain,
                    device,
                    user,
                })
            })
        }
        "msgr" => split_device().and_then(|(user, device)| {
            Some(WireJid::Messenger {
                user,
                device: u16::try_from(device).ok()?,
                server,
            })
        }),
        "interop" => split_device().and_then(|(rest, device)| {
            let (integrator, user) = rest.split_once('-')?;
            Some(WireJid::Interop {
                user,
                device: u16::try_from(device).ok()?,
                integrator: u16::try_from(parse_decimal(integrator)?).ok()?,
                server,
            })
        }),
        _ => None,
    };
    Some(jid.unwrap_or(WireJid::Pair {
        user: user_part,
        server,
    }))
}

/// `user_agent` → (`user`, agent) when the agent is a canonical decimal u8.
fn agent_split(user: &str) -> Option<(&str, u8)> {
    let (user, agent) = user.rsplit_once('_')?;
    Some((user, u8::try_from(parse_decimal(agent)?).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        use WireJid::*;
        let cases = [
            (
                "15550100001@s.whatsapp.net",
                Pair {
                    user: "15550100001",
                    server: "s.whatsapp.net",
                },
            ),
            (
                "15550100001:17@s.whatsapp.net",
                Device {
                    domain: 0,
                    device: 17,
                    user: "15550100001",
                },
            ),
            (
                "15550100001_1:3@s.whatsapp.net",
                Device {
                    domain: 1,
                    device: 3,
                    user: "15550100001",
                },
            ),
            (
                "1:99@hosted.lid",
                Device {
                    domain: 129,
                    device: 99,
                    user: "1",
                },
            ),
            // An agent only counts on s.whatsapp.net; elsewhere it stays in the user.
            (
                "1_5:3@lid",
                Device {
                    domain: 1,
                    device: 3,
                    user: "1_5",
                },
            ),
            // Out-of-range or non-canonical devices stay in the user of a pair.
            (
                "1:256@s.whatsapp.net",
                Pair {
                    user: "1:256",
                    server: "s.whatsapp.net",
                },
            ),
            (
                "1:03@lid",
                Pair {
                    user: "1:03",
                    server: "lid",
                },
            ),
            (
                "1:3@g.us",
                Pair {
                    user: "1:3",
                    server: "g.us",
                },
            ),
            (
                "42:300@msgr",
                Messenger {
                    user: "42",
                    device: 300,
                    server: "msgr",
                },
            ),
            (
                "7-42:3@interop",
                Interop {
                    user: "42",
                    device: 3,
                    integrator: 7,
                    server: "interop",
                },
            ),
            (
                "@s.whatsapp.net",
                Pair {
                    user: "",
                    server: "s.whatsapp.net",
                },
            ),
        ];
        for (s, expected) in cases {
            assert_eq!(classify(s), Some(expected), "{s}");
        }
        for not_jid in ["s.whatsapp.net", "user@", "a@b@c", "@"] {
            assert_eq!(classify(not_jid), None, "{not_jid}");
        }
    }
}

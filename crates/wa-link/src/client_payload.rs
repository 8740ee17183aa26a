//! The `ClientPayload` a device sends in the Noise handshake's client finish: the login payload
//! of a paired device, or the registration payload (with `DevicePairingRegistrationData` built
//! from creds) of a new one. Byte-for-byte what Baileys sends for the same config.

use md5::{Digest, Md5};
use prost::Message;
use wa_proto::Jid;
use wa_proto::proto::client_payload::{
    ConnectReason, ConnectType, DevicePairingRegistrationData, UserAgent, WebInfo, user_agent,
    web_info,
};
use wa_proto::proto::device_props::{self, HistorySyncConfig};
use wa_proto::proto::{ClientPayload, DeviceProps};

use wa_auth::AuthCreds;

use crate::BaileysProfile;
use crate::error::{LinkError, Result};

/// The browser a linked device presents itself as: `(os, browser, os version)`, like Baileys'
/// `browser` tuple, e.g. `("Mac OS", "Chrome", "14.4.1")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browser {
    /// Operating system name (`Mac OS`, `Windows`, `Ubuntu`...).
    pub os: String,
    /// Browser or app name (`Chrome`, `Edge`, `Desktop`...).
    pub name: String,
    /// OS version text.
    pub os_version: String,
}

impl Browser {
    /// A browser tuple.
    pub fn new(
        os: impl Into<String>,
        name: impl Into<String>,
        os_version: impl Into<String>,
    ) -> Self {
        Self {
            os: os.into(),
            name: name.into(),
            os_version: os_version.into(),
        }
    }
}

/// What the client payloads are built from besides creds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The WhatsApp Web version `[primary, secondary, tertiary]`.
    pub version: [u32; 3],
    /// The presented browser.
    pub browser: Browser,
    /// ISO 3166-1 alpha-2 country code for the user agent locale (default `US`).
    pub country_code: String,
    /// Ask the phone for the full history (default `false`).
    pub sync_full_history: bool,
    /// Which Baileys generation's payload shape to produce.
    pub profile: BaileysProfile,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            version: [2, 3000, 1_027_934_701],
            browser: Browser::new("Mac OS", "Chrome", "14.4.1"),
            country_code: "US".into(),
            sync_full_history: false,
            profile: BaileysProfile::Baileys7,
        }
    }
}

fn user_agent(config: &ClientConfig) -> UserAgent {
    UserAgent {
        platform: Some(user_agent::Platform::Web as i32),
        app_version: Some(user_agent::AppVersion {
            primary: Some(config.version[0]),
            secondary: Some(config.version[1]),
            tertiary: Some(config.version[2]),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        release_channel: Some(user_agent::ReleaseChannel::Release as i32),
        locale_language_iso_639_1: Some("en".into()),
        locale_country_iso_3166_1_alpha_2: Some(config.country_code.clone()),
        ..Default::default()
    }
}

fn web_sub_platform(config: &ClientConfig) -> web_info::WebSubPlatform {
    let desktop_os = match config.browser.os.as_str() {
        "Mac OS" => Some(web_info::WebSubPlatform::Darwin),
        "Windows" => Some(web_info::WebSubPlatform::Win32),
        _ => None,
    };
    let applies = match config.profile {
        BaileysProfile::Baileys7 => config.sync_full_history && config.browser.name == "Desktop",
        BaileysProfile::Baileys6 => config.sync_full_history,
    };
    desktop_os
        .filter(|_| applies)
        .unwrap_or(web_info::WebSubPlatform::WebBrowser)
}

fn base_payload(config: &ClientConfig) -> ClientPayload {
    ClientPayload {
        user_agent: Some(user_agent(config)),
        web_info: Some(WebInfo {
            web_sub_platform: Some(web_sub_platform(config) as i32),
            ..Default::default()
        }),
        connect_type: Some(ConnectType::WifiUnknown as i32),
        connect_reason: Some(ConnectReason::UserActivated as i32),
        ..Default::default()
    }
}

/// The login payload of a paired device whose `me.id` is `user_jid` (`user[:device]@server`,
/// the user a phone number). A `:0` device is sent as no device: a companion is never device 0.
pub fn login_payload(user_jid: &str, config: &ClientConfig) -> Result<ClientPayload> {
    let invalid = |reason: &str| LinkError::invalid(format!("user jid {user_jid:?}"), reason);
    let jid = Jid::parse(user_jid).map_err(|e| invalid(&e.to_string()))?;
    let username: u64 = jid
        .user()
        .parse()
        .map_err(|_| invalid("user part is not a number"))?;
    let mut payload = base_payload(config);
    payload.username = Some(username);
    payload.device = jid.is_device().then(|| u32::from(jid.device()));
    payload.pull = Some(true);
    match config.profile {
        BaileysProfile::Baileys7 => {
            payload.passive = Some(true);
            payload.lid_db_migrated = Some(false);
        }
        BaileysProfile::Baileys6 => payload.passive = Some(false),
    }
    Ok(payload)
}

/// The login payload for the device described by `creds` (which must be paired).
pub fn login_payload_for(creds: &AuthCreds, config: &ClientConfig) -> Result<ClientPayload> {
    let me = creds
        .me
        .as_ref()
        .ok_or_else(|| LinkError::invalid("creds.me", "the device is not paired"))?;
    login_payload(&me.id, config)
}

fn platform_type(config: &ClientConfig) -> device_props::PlatformType {
    let fallback = match config.profile {
        BaileysProfile::Baileys7 => device_props::PlatformType::Chrome,
        BaileysProfile::Baileys6 => device_props::PlatformType::Desktop,
    };
    device_props::PlatformType::from_str_name(&config.browser.name.to_uppercase())
        .unwrap_or(fallback)
}

/// The device properties sent with a registration.
pub fn device_props(config: &ClientConfig) -> DeviceProps {
    let mut props = DeviceProps {
        os: Some(config.browser.os.clone()),
        platform_type: Some(platform_type(config) as i32),
        require_full_sync: Some(config.sync_full_history),
        ..Default::default()
    };
    if config.profile == BaileysProfile::Baileys7 {
        props.version = Some(device_props::AppVersion {
            primary: Some(10),
            secondary: Some(15),
            tertiary: Some(7),
            ..Default::default()
        });
        props.history_sync_config = Some(HistorySyncConfig {
            storage_quota_mb: Some(10240),
            inline_initial_payload_in_e2ee_msg: Some(true),
            support_call_log_history: Some(false),
            support_bot_user_agent_chat_history: Some(true),
            support_cag_reactions_and_polls: Some(true),
            support_biz_hosted_msg: Some(true),
            support_recent_sync_chunk_message_count_tuning: Some(true),
            support_hosted_group_msg: Some(true),
            support_fbid_bot_chat_history: Some(true),
            support_message_association: Some(true),
            support_group_history: Some(false),
            ..Default::default()
        });
    }
    props
}

/// The registration payload of a new device: `DevicePairingRegistrationData` from `creds`
/// (registration id, identity key, signed pre-key and its signature) plus the device props.
pub fn registration_payload(creds: &AuthCreds, config: &ClientConfig) -> ClientPayload {
    let version_text = config.version.map(|v| v.to_string()).join(".");
    let build_hash = Md5::digest(version_text.as_bytes()).to_vec();
    let spk = &creds.signed_pre_key;
    let mut payload = base_payload(config);
    payload.passive = Some(false);
    payload.pull = Some(false);
    payload.device_pairing_data = Some(DevicePairingRegistrationData {
        e_regid: Some(creds.registration_id.to_be_bytes().to_vec()),
        e_keytype: Some(vec![wa_signal::curve::DJB_KEY_TYPE]),
        e_ident: Some(creds.signed_identity_key.public.as_bytes().to_vec()),
        e_skey_id: Some(spk.key_id.to_be_bytes()[1..].to_vec()),
        e_skey_val: Some(spk.key_pair.public.as_bytes().to_vec()),
        e_skey_sig: Some(spk.signature.to_vec()),
        build_hash: Some(build_hash),
        device_props: Some(device_props(config).encode_to_vec()),
    });
    payload
}

//! Masking the secrets of PostgreSQL connection strings before they are printed, in every form
//! libpq and tokio-postgres accept:
//!
//! - URLs (`postgres://user:password@host/db?param=value`): the password of the user info,
//!   which runs to the **last** `@` (so a password with an unencoded `@`, `/`, `?` or `:` is
//!   masked whole), and the value of every secret parameter (`password`, `sslpassword`, any
//!   name containing `pass`, `secret` or `token`, also when the name is percent-encoded);
//! - key=value strings (`host=db password='it''s secret'`): the value of every secret keyword,
//!   quoted or not, with backslash escapes. Text that does not parse is masked from where
//!   parsing failed to the end.
//!
//! Masking errs on the side of hiding: when a URL's parts are ambiguous, more is masked.

/// What replaces a secret.
const MASK: &str = "***";

/// `text` with every password or other secret of a connection string replaced by `***`. Text
/// that is neither a URL nor holds `key=value` pairs (a folder path) is returned as it is.
pub fn redact_connection(text: &str) -> String {
    let trimmed = text.trim_start();
    let offset = text.len() - trimmed.len();
    let masks = match url_rest(trimmed) {
        Some(rest) => url_masks(trimmed, rest),
        None if text.contains('=') => key_value_masks(trimmed),
        None => return text.to_owned(),
    };
    let shifted = masks.into_iter().map(|(a, b)| (a + offset, b + offset));
    apply(text, shifted.collect())
}

/// Whether `text` looks like a connection string rather than a folder: a URL (`scheme://...`),
/// or key=value pairs naming at least one libpq keyword.
pub(crate) fn is_connection_string(text: &str) -> bool {
    url_rest(text.trim_start()).is_some() || looks_like_key_values(text)
}

/// Whether `text` is a key=value connection string naming at least one libpq keyword.
fn looks_like_key_values(text: &str) -> bool {
    const KEYWORDS: [&str; 8] = [
        "host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "options",
    ];
    let mut parser = KeyValues::new(text);
    let mut known = false;
    while let Some(pair) = parser.next_pair() {
        match pair {
            Ok((keyword, _)) => known |= KEYWORDS.contains(&keyword),
            Err(_) => return false,
        }
    }
    known
}

/// Where the part after `scheme://` starts, when `text` starts with a URL scheme.
fn url_rest(text: &str) -> Option<usize> {
    let (scheme, _) = text.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme.len() + 3)
}

/// The byte ranges of `url` to mask; `rest` is where the part after `scheme://` starts.
fn url_masks(url: &str, rest: usize) -> Vec<Span> {
    let mut masks = Vec::new();
    // User info: up to the last `@`; the password is what follows its first `:`.
    if let Some(at) = url[rest..].rfind('@').map(|at| rest + at)
        && let Some(colon) = url[rest..at].find(':').map(|c| rest + c)
    {
        masks.push((colon + 1, at));
    }
    // Secret parameters, wherever a `?` or `&` starts one (also inside the user info: the
    // ranges are computed on the original text and merged).
    for (start, _) in url.match_indices(['?', '&']) {
        let pair = &url[start + 1..];
        let pair_end = pair.find(['&', '?']).unwrap_or(pair.len());
        let Some(eq) = pair[..pair_end].find('=') else {
            continue;
        };
        if is_secret(&percent_decode(&pair[..eq])) {
            let value_end = pair.find('&').unwrap_or(pair.len());
            masks.push((start + 1 + eq + 1, start + 1 + value_end.max(eq + 1)));
        }
    }
    masks
}

/// The byte ranges of a key=value string to mask.
fn key_value_masks(text: &str) -> Vec<Span> {
    let mut masks = Vec::new();
    let mut parser = KeyValues::new(text);
    while let Some(pair) = parser.next_pair() {
        match pair {
            Ok((keyword, value)) if is_secret(keyword) => masks.push(value),
            Ok(_) => {}
            Err(from) => {
                masks.push((from, text.len()));
                break;
            }
        }
    }
    masks
}

/// Whether a parameter or keyword names a secret.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// `%XX` sequences decoded (others kept), as drivers decode URL parameter names.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with each range (merged where they overlap or touch) replaced by [`MASK`].
fn apply(text: &str, mut masks: Vec<Span>) -> String {
    masks.retain(|(a, b)| a < b);
    masks.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < masks.len() {
        let (start, mut end) = masks[i];
        while i + 1 < masks.len() && masks[i + 1].0 <= end {
            end = end.max(masks[i + 1].1);
            i += 1;
        }
        let start = start.max(copied);
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end.max(copied);
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// A byte range of the text.
type Span = (usize, usize);

/// A parser of libpq's key=value syntax: `keyword = value` pairs separated by whitespace; a
/// value is quoted (`'...'`) or runs to the next whitespace; a backslash escapes the next
/// character in both.
struct KeyValues<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> KeyValues<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn skip_whitespace(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next `(keyword, value byte range)`, `Err(offset)` where the syntax breaks, `None`
    /// at the end.
    fn next_pair(&mut self) -> Option<Result<(&'a str, Span), usize>> {
        self.skip_whitespace();
        let start = self.pos;
        if start == self.text.len() {
            return None;
        }
        let rest = &self.text[start..];
        let keyword_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        self.pos += keyword_len;
        self.skip_whitespace();
        if keyword_len == 0 || !self.text[self.pos..].starts_with('=') {
            self.pos = self.text.len();
            return Some(Err(start));
        }
        self.pos += 1;
        self.skip_whitespace();
        let value_start = self.pos;
        let value = self.value();
        self.pos = value.unwrap_or(self.text.len());
        Some(match value {
            Some(end) => Ok((&self.text[start..start + keyword_len], (value_start, end))),
            None => Err(value_start),
        })
    }

    /// Where the value starting at `pos` ends; `None` when it is missing or unterminated.
    fn value(&self) -> Option<usize> {
        let rest = &self.text[self.pos..];
        let quoted = rest.starts_with('\'');
        let mut chars = rest.char_indices().skip(usize::from(quoted));
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next()?;
                }
                '\'' if quoted => return Some(self.pos + i + 1),
                c if !quoted && c.is_whitespace() => return (i > 0).then_some(self.pos + i),
                _ => {}
            }
        }
        (!quoted && !rest.is_empty()).then_some(self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Format;
    use crate::location::{Location, PostgresLocation, Role};
    use crate::summary::{Endpoint, Summary};

    /// How a password is put into a connection string.
    #[derive(Clone, Copy, Debug)]
    enum Form {
        /// `postgres://wa:<password as typed>@...`: unencoded `/`, `@`, `?`, `:` and all.
        UrlUserInfo,
        /// `postgres://wa:<percent-encoded>@...`.
        UrlUserInfoEncoded,
        /// `postgres://wa@...?password=<percent-encoded>`.
        UrlQuery,
        /// `?pass%77ord=...`: the parameter name percent-encoded (drivers decode it).
        UrlQueryEncodedName,
        /// `?sslpassword=...` (libpq: the client key's passphrase).
        UrlQuerySslPassword,
        /// `password='...'` with `\` escapes.
        KeyValueQuoted,
        /// `password = '...'`, spaces around `=`.
        KeyValueSpaced,
        /// `password=...` unquoted, whitespace, quotes and backslashes escaped.
        KeyValueBare,
    }

    const FORMS: [Form; 8] = [
        Form::UrlUserInfo,
        Form::UrlUserInfoEncoded,
        Form::UrlQuery,
        Form::UrlQueryEncodedName,
        Form::UrlQuerySslPassword,
        Form::KeyValueQuoted,
        Form::KeyValueSpaced,
        Form::KeyValueBare,
    ];

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn escape(text: &str, also: &[char]) -> String {
        text.chars()
            .flat_map(|c| match c {
                '\\' | '\'' => vec!['\\', c],
                c if also.contains(&c) => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    }

    /// The connection string (without `instance`), and whether the driver must accept it
    /// and read back the password.
    fn connection(form: Form, password: &str) -> (String, bool) {
        let base = "postgres://wa@localhost:1/wa?sslmode=disable";
        let kv = "host=localhost port=1 user=wa dbname=wa";
        match form {
            Form::UrlUserInfo => (format!("postgres://wa:{password}@localhost:1/wa"), false),
            Form::UrlUserInfoEncoded => (
                format!("postgres://wa:{}@localhost:1/wa", encode(password)),
                true,
            ),
            Form::UrlQuery => (format!("{base}&password={}", encode(password)), true),
            Form::UrlQueryEncodedName => (format!("{base}&pass%77ord={}", encode(password)), true),
            Form::UrlQuerySslPassword => {
                (format!("{base}&sslpassword={}", encode(password)), false)
            }
            Form::KeyValueQuoted => (format!("{kv} password='{}'", escape(password, &[])), true),
            Form::KeyValueSpaced => (
                format!(
                    "{kv} password = '{}' application_name=x",
                    escape(password, &[])
                ),
                true,
            ),
            Form::KeyValueBare => (
                format!("{kv} password={}", escape(password, &[' ', '\t'])),
                true,
            ),
        }
    }

    /// Everything that prints a location: Display and Debug of the location, a summary (table
    /// and JSON) naming it on both sides, and the errors of resolving it wrongly.
    fn outputs(connection: &str) -> Vec<String> {
        let mut out = Vec::new();
        let url = connection.starts_with("postgres://");
        let with_instance = if url {
            format!("{connection}&instance=acct")
        } else {
            format!("{connection} instance=acct")
        };
        let location = match Location::resolve(&with_instance, None, Role::Source) {
            Ok(location) => location,
            Err(e) => {
                out.push(format!("{e} {e:?}"));
                Location::Postgres(PostgresLocation {
                    connection: connection.to_owned(),
                    instance: "acct".into(),
                    schema: None,
                })
            }
        };
        out.push(format!("{location} {location:?}"));
        let summary = Summary::new(Endpoint::at(&location), Endpoint::at(&location), false);
        out.push(format!("{summary} {summary:?} {}", summary.to_json()));
        for (text, format, role) in [
            (connection, None, Role::Source),
            (connection, None, Role::Target),
            (connection, Some(Format::Native), Role::Target),
            (connection, Some(Format::Postgres), Role::Target),
        ] {
            if let Err(e) = Location::resolve(text, format, role) {
                out.push(format!("{e} {e:?}"));
            }
        }
        out
    }

    fn password() -> impl Strategy<Value = (String, Vec<String>)> {
        let special = "[/@?&=:' \\\\%#!$;,+.\"]{0,3}";
        let core = "[A-Z0-9]{4,8}";
        (special, core, special, core, special)
            .prop_map(|(s0, c1, s1, c2, s2)| (format!("{s0}{c1}{s1}{c2}{s2}"), vec![c1, c2]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_password_survives_in_any_output(
            (password, cores) in password(),
            form in prop::sample::select(FORMS.to_vec()),
        ) {
            let (connection, driver_reads_it) = connection(form, &password);
            if driver_reads_it {
                // The form is one the driver accepts, and it reads this very password.
                let config: tokio_postgres::Config = connection
                    .parse()
                    .unwrap_or_else(|e| panic!("{form:?}: the driver rejects it: {e}"));
                prop_assert_eq!(config.get_password(), Some(password.as_bytes()));
            }
            for output in outputs(&connection) {
                for secret in cores.iter().chain([&password, &encode(&password)]) {
                    prop_assert!(
                        !output.contains(secret.as_str()),
                        "{:?}: {:?} printed in {}", form, secret, output
                    );
                }
            }
        }
    }

    #[test]
    fn what_is_not_secret_stays_readable() {
        assert_eq!(
            redact_connection("postgres://wa:pw@db:5432/wa?sslmode=disable&password=x&schema=s"),
            "postgres://wa:***@db:5432/wa?sslmode=disable&password=***&schema=s"
        );
        assert_eq!(
            redact_connection("host=db user=wa password='a b' dbname=wa"),
            "host=db user=wa password=*** dbname=wa"
        );
        assert_eq!(redact_connection("/srv/bot/auth"), "/srv/bot/auth");
        assert_eq!(
            redact_connection("postgres://wa@db/wa"),
            "postgres://wa@db/wa"
        );
        // Unparseable: hidden from where parsing failed.
        assert_eq!(
            redact_connection("host=db password='unterminated"),
            "host=db password=***"
        );
    }
}

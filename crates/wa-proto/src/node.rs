//! Binary nodes: the XML-like stanzas (`<iq>`, `<message>`, `<pair-success>`, ...) WhatsApp
//! exchanges once the Noise session is up.
//!
//! A [`Node`] has a tag, ordered [`Attrs`] (order matters: it is the order they are encoded in)
//! and a [`Content`]. Build one with the `with_*` methods and read one with the getters:
//!
//! ```
//! use wa_proto::{Jid, Node};
//!
//! let iq = Node::new("iq")
//!     .with_attr("id", "1234.5-6")
//!     .with_attr("to", Jid::server_jid(wa_proto::jid::Server::Pn))
//!     .with_attr("type", "set")
//!     .with_attr("xmlns", "encrypt")
//!     .with_children([
//!         Node::new("registration").with_bytes(vec![0, 0, 0, 177]),
//!         Node::new("type").with_bytes(vec![5]),
//!     ]);
//! assert_eq!(iq.attr("type"), Some("set"));
//! assert_eq!(iq.require_child("type")?.content_bytes(), Some(&[5u8][..]));
//! assert!(iq.require_jid_attr("to")?.is_server());
//!
//! let bytes = iq.encode()?;
//! assert_eq!(Node::decode(&bytes)?, iq);
//! # Ok::<(), wa_proto::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::codec;
use crate::error::{Error, Result};
use crate::jid::Jid;

/// A node's attributes: key/value string pairs in insertion order, keys unique.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Attrs(Vec<(String, String)>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Attrs {
        Attrs(Vec::new())
    }

    /// No attributes, with room for `capacity`.
    pub fn with_capacity(capacity: usize) -> Attrs {
        Attrs(Vec::with_capacity(capacity))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `true` when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Sets `key` to `value`: replaced in place when present (keeping its position), appended
    /// otherwise. Returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, keeping the order of the others. Returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as a slice, in order.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// Appends without checking for an existing key; the decoder checks uniqueness once for
    /// the whole node instead.
    pub(crate) fn push_unchecked(&mut self, key: String, value: String) {
        self.0.push((key, value));
    }

    /// The first key that appears twice, if any.
    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        match self.0.len() {
            0 | 1 => None,
            n if n <= 16 => self
                .0
                .iter()
                .enumerate()
                .find(|(i, (k, _))| self.0[..*i].iter().any(|(prev, _)| prev == k))
                .map(|(_, (k, _))| k.as_str()),
            _ => {
                let mut keys: Vec<&str> = self.keys().collect();
                keys.sort_unstable();
                keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
            }
        }
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Attrs {
    /// Collects pairs; a repeated key replaces the earlier value in its position.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.extend(iter);
        attrs
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Attrs {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Attrs {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// What a node holds after its attributes.
///
/// On the wire, a [`Content::Text`] that is a token, a packed number or a JID decodes back as
/// `Text`; any other text is written as raw bytes and decodes back as [`Content::Bytes`] (as
/// Baileys does). Use [`Node::content_text`] / [`Node::content_bytes`] to read either.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum Content {
    /// No content.
    #[default]
    None,
    /// Child nodes (an empty list is valid and distinct from `None`).
    Nodes(Vec<Node>),
    /// Binary content.
    Bytes(Vec<u8>),
    /// String content.
    Text(String),
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::None => f.write_str("None"),
            Content::Nodes(nodes) => f.debug_tuple("Nodes").field(nodes).finish(),
            Content::Bytes(bytes) => write!(f, "Bytes({})", HexPreview(bytes)),
            Content::Text(text) => f.debug_tuple("Text").field(text).finish(),
        }
    }
}

/// Hex of short byte strings; length and a prefix of long ones (so a 1 MiB payload does not
/// flood a log line).
struct HexPreview<'a>(&'a [u8]);

impl fmt::Display for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        for b in shown {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// A binary node: `tag`, ordered `attrs`, `content`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// The tag (`iq`, `message`, `pair-success`, ...). Never empty in a valid node.
    pub tag: String,
    /// The attributes, in encoding order.
    pub attrs: Attrs,
    /// The content.
    pub content: Content,
}

impl Node {
    /// A node with `tag`, no attributes and no content.
    pub fn new(tag: impl Into<String>) -> Node {
        Node {
            tag: tag.into(),
            attrs: Attrs::new(),
            content: Content::None,
        }
    }

    /// Sets attribute `key` (replacing an existing value in place).
    #[must_use]
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Node {
        self.attrs.insert(key, value);
        self
    }

    /// Sets attribute `key` when `value` is `Some` (Baileys drops `undefined`/`null` values).
    #[must_use]
    pub fn with_attr_opt(self, key: impl Into<String>, value: Option<impl Into<String>>) -> Node {
        match value {
            Some(value) => self.with_attr(key, value),
            None => self,
        }
    }

    /// Sets the content to these children.
    #[must_use]
    pub fn with_children(mut self, children: impl IntoIterator<Item = Node>) -> Node {
        self.content = Content::Nodes(children.into_iter().collect());
        self
    }

    /// Appends one child (turning no content into a child list).
    ///
    /// A node whose content is bytes or text has that content replaced by the child list.
    #[must_use]
    pub fn with_child(mut self, child: Node) -> Node {
        self.push_child(child);
        self
    }

    /// Sets binary content.
    #[must_use]
    pub fn with_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Node {
        self.content = Content::Bytes(bytes.into());
        self
    }

    /// Sets string content.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Node {
        self.content = Content::Text(text.into());
        self
    }

    /// Sets the content.
    #[must_use]
    pub fn with_content(mut self, content: Content) -> Node {
        self.content = content;
        self
    }

    /// Appends one child (see [`with_child`](Self::with_child)).
    pub fn push_child(&mut self, child: Node) {
        match &mut self.content {
            Content::Nodes(children) => children.push(child),
            other => *other = Content::Nodes(vec![child]),
        }
    }

    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key)
    }

    /// The value of attribute `key`, or [`Error::MissingAttribute`].
    pub fn require_attr(&self, key: &str) -> Result<&str> {
        self.attr(key).ok_or_else(|| Error::MissingAttribute {
            tag: self.tag.clone(),
            key: key.to_owned(),
        })
    }

    /// Attribute `key` parsed as `T` (`None` when absent), or [`Error::InvalidAttribute`].
    ///
    /// ```
    /// # use wa_proto::Node;
    /// let count = Node::new("count").with_attr("value", "30");
    /// assert_eq!(count.attr_as::<u32>("value")?, Some(30));
    /// assert_eq!(count.attr_as::<u32>("other")?, None);
    /// # Ok::<(), wa_proto::Error>(())
    /// ```
    pub fn attr_as<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        match self.attr(key) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| Error::InvalidAttribute {
                    tag: self.tag.clone(),
                    key: key.to_owned(),
                    value: value.to_owned(),
                    expected: std::any::type_name::<T>(),
                }),
        }
    }

    /// Attribute `key` parsed as `T`; [`Error::MissingAttribute`] when absent.
    pub fn require_attr_as<T: FromStr>(&self, key: &str) -> Result<T> {
        self.attr_as(key)?.ok_or_else(|| Error::MissingAttribute {
            tag: self.tag.clone(),
            key: key.to_owned(),
        })
    }

    /// Attribute `key` as a [`Jid`] (`None` when absent).
    pub fn jid_attr(&self, key: &str) -> Result<Option<Jid>> {
        self.attr_as(key)
    }

    /// Attribute `key` as a [`Jid`]; [`Error::MissingAttribute`] when absent.
    pub fn require_jid_attr(&self, key: &str) -> Result<Jid> {
        self.require_attr_as(key)
    }

    /// The child nodes (empty unless the content is [`Content::Nodes`]).
    pub fn children(&self) -> &[Node] {
        match &self.content {
            Content::Nodes(children) => children,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// The first child with `tag`, or [`Error::MissingChild`].
    pub fn require_child(&self, tag: &str) -> Result<&Node> {
        self.child(tag).ok_or_else(|| Error::MissingChild {
            parent: self.tag.clone(),
            tag: tag.to_owned(),
        })
    }

    /// Every child with `tag`, in order.
    pub fn children_with_tag<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children().iter().filter(move |c| c.tag == tag)
    }

    /// Follows a path of child tags (the first match at each step), e.g.
    /// `pair_success.child_at(&["device-identity"])`.
    pub fn child_at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, tag| node.child(tag))
    }

    /// The content as bytes: binary content, or the UTF-8 of string content.
    pub fn content_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Bytes(bytes) => Some(bytes),
            Content::Text(text) => Some(text.as_bytes()),
            _ => None,
        }
    }

    /// The content as bytes, or [`Error::UnexpectedContent`].
    pub fn require_content_bytes(&self) -> Result<&[u8]> {
        self.content_bytes()
            .ok_or_else(|| Error::UnexpectedContent {
                tag: self.tag.clone(),
                expected: "bytes",
            })
    }

    /// The content as text: string content, or binary content that is valid UTF-8 (raw string
    /// content decodes as bytes).
    pub fn content_text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(text) => Some(text),
            Content::Bytes(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// Encodes with the leading flag byte (uncompressed), exactly as Baileys'
    /// `encodeBinaryNode`. See [`codec::encode`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Decodes a buffer that starts with the flag byte (inflating a compressed one), with the
    /// default limits. See [`codec::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Node> {
        codec::decode(bytes)
    }
}

/// An XML-like rendering for logs: `<iq id="1" type="get"><ping/></iq>`. Binary content is
/// shown as hex (long values truncated).
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}", self.tag)?;
        for (k, v) in &self.attrs {
            write!(f, " {k}={v:?}")?;
        }
        match &self.content {
            Content::None => f.write_str("/>"),
            Content::Nodes(children) => {
                f.write_str(">")?;
                for child in children {
                    write!(f, "{child}")?;
                }
                write!(f, "</{}>", self.tag)
            }
            Content::Bytes(bytes) => write!(f, ">{}</{}>", HexPreview(bytes), self.tag),
            Content::Text(text) => write!(f, ">{text:?}</{}>", self.tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Node {
        Node::new("iq")
            .with_attr("id", "1")
            .with_attr("type", "result")
            .with_children([
                Node::new("pair-success").with_children([
                    Node::new("device-identity").with_bytes(vec![1, 2, 3]),
                    Node::new("device").with_attr("jid", "15550100001:17@s.whatsapp.net"),
                    Node::new("platform").with_attr("name", "smba"),
                ]),
                Node::new("count").with_attr("value", "x"),
            ])
    }

    #[test]
    fn attrs_keep_order_and_replace_in_place() {
        let mut attrs: Attrs = [("b", "1"), ("a", "2"), ("c", "3")].into_iter().collect();
        assert_eq!(attrs.insert("a", "9"), Some("2".to_owned()));
        assert_eq!(attrs.keys().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(attrs.get("a"), Some("9"));
        assert_eq!(attrs.remove("b"), Some("1".to_owned()));
        assert_eq!(attrs.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(attrs.remove("zz"), None);
        assert!(attrs.contains_key("c") && !attrs.contains_key("b"));
    }

    #[test]
    fn duplicate_detection_small_and_large() {
        let mut attrs = Attrs::new();
        attrs.push_unchecked("a".into(), "1".into());
        attrs.push_unchecked("b".into(), "1".into());
        assert_eq!(attrs.first_duplicate(), None);
        attrs.push_unchecked("a".into(), "2".into());
        assert_eq!(attrs.first_duplicate(), Some("a"));

        let mut many = Attrs::new();
        for i in 0..40 {
            many.push_unchecked(format!("k{i}"), String::new());
        }
        assert_eq!(many.first_duplicate(), None);
        many.push_unchecked("k7".into(), String::new());
        assert_eq!(many.first_duplicate(), Some("k7"));
    }

    #[test]
    fn getters_find_what_the_auth_flows_need() {
        let iq = sample();
        let device = iq.child_at(&["pair-success", "device"]).unwrap();
        assert_eq!(
            device.require_jid_attr("jid").unwrap().to_string(),
            "15550100001:17@s.whatsapp.net"
        );
        assert_eq!(
            iq.child_at(&["pair-success", "device-identity"])
                .unwrap()
                .require_content_bytes()
                .unwrap(),
            &[1, 2, 3]
        );
        assert!(iq.child_at(&["pair-success", "nope"]).is_none());
        assert_eq!(iq.children_with_tag("count").count(), 1);
        assert!(matches!(
            iq.require_child("nope"),
            Err(Error::MissingChild { .. })
        ));
        assert!(matches!(
            iq.require_attr("nope"),
            Err(Error::MissingAttribute { .. })
        ));
        assert!(matches!(
            iq.require_child("count").unwrap().attr_as::<u32>("value"),
            Err(Error::InvalidAttribute { .. })
        ));
        assert!(matches!(
            iq.require_content_bytes(),
            Err(Error::UnexpectedContent { .. })
        ));
    }

    #[test]
    fn text_and_bytes_read_either_way() {
        let raw = Node::new("body").with_bytes(b"hello".to_vec());
        assert_eq!(raw.content_text(), Some("hello"));
        let text = Node::new("body").with_text("hello");
        assert_eq!(text.content_bytes(), Some(&b"hello"[..]));
        assert_eq!(Node::new("x").with_bytes(vec![0xff]).content_text(), None);
    }

    #[test]
    fn push_child_and_optional_attrs() {
        let node = Node::new("list")
            .with_attr_opt("a", Some("1"))
            .with_attr_opt("b", None::<String>)
            .with_child(Node::new("item"))
            .with_child(Node::new("item"));
        assert_eq!(node.attrs.len(), 1);
        assert_eq!(node.children().len(), 2);
    }

    #[test]
    fn display_is_xml_like() {
        let node = Node::new("iq")
            .with_attr("id", "1")
            .with_children([Node::new("ping"), Node::new("b").with_bytes(vec![0xab; 40])]);
        let shown = node.to_string();
        assert!(shown.starts_with(r#"<iq id="1"><ping/><b>abab"#), "{shown}");
        assert!(shown.ends_with("…(40 bytes)</b></iq>"), "{shown}");
    }
}

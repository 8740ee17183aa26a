//! Serde building blocks for declaring a stored JSON shape as structs (internal).
//!
//! Reading a shape with serde must never fail on bad data: a field of the wrong type has to be
//! reported with its JSON path, which serde does not give. So the pieces here accept any JSON
//! value and remember what they found, and the typed step that reads a struct's fields (and
//! knows their paths) reports what is wrong:
//!
//! - [`Obj<T>`]: an object of shape `T`, absent (or `null`), or some other value;
//! - [`Entries<T>`]: an object's entries in file order (keys such as base64 keys are data);
//! - leaves are `Option<Value>` (absent or `null`: `None`) or `Value`, converted by the
//!   path-carrying readers of `super::value`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::{CompatError, Result};

/// An object field read as `T`, or what stood there instead.
#[derive(Debug, Default)]
pub(crate) enum Obj<T> {
    /// Absent, or `null`.
    #[default]
    Absent,
    /// An object.
    Object(T),
    /// Some other JSON value.
    Other,
}

impl<T> Obj<T> {
    /// The object: [`CompatError::Missing`] when absent, [`CompatError::WrongType`] when
    /// something else stands at `path`.
    pub(crate) fn required(&self, path: &str) -> Result<&T> {
        match self {
            Self::Object(object) => Ok(object),
            Self::Absent => Err(CompatError::Missing {
                path: path.to_owned(),
            }),
            Self::Other => Err(wrong_type(path)),
        }
    }

    /// The object if there is one; [`CompatError::WrongType`] when something else stands at
    /// `path`.
    pub(crate) fn optional(&self, path: &str) -> Result<Option<&T>> {
        match self {
            Self::Object(object) => Ok(Some(object)),
            Self::Absent => Ok(None),
            Self::Other => Err(wrong_type(path)),
        }
    }

    /// The object, where a value must be one (a map entry): anything else, `null` included,
    /// is [`CompatError::WrongType`].
    pub(crate) fn object(&self, path: &str) -> Result<&T> {
        match self {
            Self::Object(object) => Ok(object),
            Self::Absent | Self::Other => Err(wrong_type(path)),
        }
    }
}

fn wrong_type(path: &str) -> CompatError {
    CompatError::WrongType {
        path: path.to_owned(),
        expected: "object",
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Obj<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Object)
    }

    fn visit_unit<E>(self) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Absent)
    }

    fn visit_none<E>(self) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Absent)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Obj<T>, A::Error> {
        // Every element is consumed: a deserializer may insist.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::Other)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Other)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Other)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Other)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Other)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Obj<T>, E> {
        Ok(Obj::Other)
    }
}

/// An object's entries, in file order.
#[derive(Debug)]
pub(crate) struct Entries<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

struct EntriesVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
    type Value = Entries<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries<T>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<String, T>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

/// Reads `value` as the shape `T`. The shapes built from this module's pieces accept any
/// JSON, so this fails only if a shape breaks that rule; the error then names `path`.
pub(crate) fn read<'a, T: Deserialize<'a>>(value: &'a Value, path: &str) -> Result<T> {
    T::deserialize(value).map_err(|source| CompatError::Shape {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Inner {
        a: Option<Value>,
        #[serde(default)]
        nested: Obj<Entries<Value>>,
    }

    #[test]
    fn any_json_reads_and_what_stood_where_is_kept() {
        for value in [
            json!(null),
            json!(1),
            json!(-1),
            json!(1.5),
            json!("x"),
            json!(true),
            json!([1, {"a": 2}]),
            json!({}),
            json!({"a": null, "nested": [1]}),
            json!({"a": [1], "nested": {"k": {"x": 1}, "j": null}, "other": 3}),
        ] {
            let obj: Obj<Inner> = read(&value, "").unwrap();
            match (&value, obj) {
                (Value::Null, Obj::Absent) | (Value::Object(_), Obj::Object(_)) => {}
                (v, Obj::Other) if !v.is_object() && !v.is_null() => {}
                (v, other) => panic!("{v}: {other:?}"),
            }
        }
        let value = json!({"a": 1, "nested": {"z": 1, "b": 2, "a": 3}});
        let Obj::Object(inner) = read::<Obj<Inner>>(&value, "").unwrap() else {
            panic!("an object")
        };
        assert_eq!(inner.a, Some(json!(1)));
        let keys: Vec<&str> = match &inner.nested {
            Obj::Object(entries) => entries.0.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(keys, ["z", "b", "a"], "file order");
        assert!(matches!(
            Obj::<Inner>::Other.required("/p"),
            Err(CompatError::WrongType { path, .. }) if path == "/p"
        ));
        assert!(matches!(
            Obj::<Inner>::Absent.required("/p"),
            Err(CompatError::Missing { path }) if path == "/p"
        ));
        assert!(matches!(Obj::<Inner>::Absent.optional("/p"), Ok(None)));
        assert!(Obj::<Inner>::Absent.object("/p").is_err());
    }
}

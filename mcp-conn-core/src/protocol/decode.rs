//! Hand-written readers for the results of every tool call.
//!
//! A derived `Deserialize` with `#[serde(flatten)]` buffers the whole object
//! (serde's private `Content`) and reads it a second time, and reading a
//! content block as a `Value` first builds a map only to take it apart.
//! Both are measurable on every `tools/call` (the echo round trip of the
//! stdio benchmark spent more instructions reading its result than writing
//! its request). These readers take each field as it comes; what they do
//! not know goes to `extra` exactly as before.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{CallToolResult, ContentBlock};

/// A key of an object, named when it is one the reader takes itself.
enum Key<const N: usize> {
    Known(usize),
    Other(String),
}

struct KeyVisitor<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> Visitor<'de> for KeyVisitor<N> {
    type Value = Key<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<N>, E> {
        Ok(match self.0.iter().position(|k| *k == v) {
            Some(i) => Key::Known(i),
            None => Key::Other(v.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<N>, E> {
        Ok(match self.0.iter().position(|k| *k == v) {
            Some(i) => Key::Known(i),
            None => Key::Other(v),
        })
    }
}

/// Reads the next key of `map` against `names`.
fn next_key<'de, A: MapAccess<'de>, const N: usize>(
    map: &mut A,
    names: &'static [&'static str; N],
) -> Result<Option<Key<N>>, A::Error> {
    struct Seed<const N: usize>(&'static [&'static str; N]);
    impl<'de, const N: usize> de::DeserializeSeed<'de> for Seed<N> {
        type Value = Key<N>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<N>, D::Error> {
            d.deserialize_str(KeyVisitor(self.0))
        }
    }
    map.next_key_seed(Seed(names))
}

const RESULT_KEYS: [&str; 3] = ["content", "structuredContent", "isError"];

impl<'de> Deserialize<'de> for CallToolResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ResultVisitor;
        impl<'de> Visitor<'de> for ResultVisitor {
            type Value = CallToolResult;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tools/call result (an object)")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CallToolResult, A::Error> {
                let mut out = CallToolResult::default();
                let mut seen = [false; 3];
                while let Some(key) = next_key(&mut map, &RESULT_KEYS)? {
                    match key {
                        Key::Known(i) => {
                            if std::mem::replace(&mut seen[i], true) {
                                return Err(de::Error::duplicate_field(RESULT_KEYS[i]));
                            }
                            match i {
                                0 => out.content = map.next_value()?,
                                1 => out.structured_content = map.next_value()?,
                                _ => out.is_error = map.next_value()?,
                            }
                        }
                        Key::Other(name) => {
                            out.extra.insert(name, map.next_value()?);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(ResultVisitor)
    }
}

const BLOCK_KEYS: [&str; 2] = ["type", "text"];

impl<'de> Deserialize<'de> for ContentBlock {
    /// A text block is read field by field; any other block, or anything
    /// unusual, goes through `ContentBlock::from_value`, as all did before.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BlockVisitor;
        impl<'de> Visitor<'de> for BlockVisitor {
            type Value = ContentBlock;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content block")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContentBlock, A::Error> {
                let mut kind: Option<Value> = None;
                let mut text: Option<Value> = None;
                let mut extra = Map::new();
                while let Some(key) = next_key(&mut map, &BLOCK_KEYS)? {
                    // A repeated key: the last one counts, as in a `Value`.
                    match key {
                        Key::Known(0) => kind = Some(map.next_value()?),
                        Key::Known(_) => text = Some(map.next_value()?),
                        Key::Other(name) => {
                            extra.insert(name, map.next_value()?);
                        }
                    }
                }
                match (kind, text) {
                    (Some(Value::String(k)), Some(Value::String(text))) if k == "text" => {
                        Ok(ContentBlock::Text { text, extra })
                    }
                    (kind, text) => {
                        if let Some(kind) = kind {
                            extra.insert("type".to_owned(), kind);
                        }
                        if let Some(text) = text {
                            extra.insert("text".to_owned(), text);
                        }
                        Ok(ContentBlock::from_value(Value::Object(extra)))
                    }
                }
            }

            // Not an object: kept whole, as `Unknown`.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::from(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<ContentBlock, E> {
                Ok(ContentBlock::Unknown(Value::Null))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<ContentBlock, A::Error> {
                let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ContentBlock::Unknown(value))
            }
        }
        d.deserialize_any(BlockVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the old readers made: `Value` first, then the same rules.
    fn via_value(v: &Value) -> ContentBlock {
        ContentBlock::from_value(v.clone())
    }

    #[test]
    fn blocks_read_as_the_value_path_reads_them() {
        let cases = [
            json!({"type": "text", "text": "hi"}),
            json!({"type": "text", "text": "hi", "annotations": {"priority": 1}, "_meta": {"a": 1}}),
            json!({"text": "no type"}),
            json!({"type": "text", "text": 5}),
            json!({"type": "text"}),
            json!({"type": 7, "text": "x"}),
            json!({"type": "image", "data": "AAAA", "mimeType": "image/png", "text": "alt"}),
            json!({"type": "audio", "data": "AAAA", "mimeType": "audio/wav"}),
            json!({"type": "image", "data": "AAAA"}),
            json!({"type": "resource_link", "uri": "file:///a", "name": "a"}),
            json!({"type": "resource", "resource": {"uri": "file:///a", "text": "t"}}),
            json!({"type": "resource", "resource": 3}),
            json!({"type": "hologram", "text": "future"}),
            json!({}),
            json!("a string"),
            json!(null),
            json!([1, 2]),
            json!(4.5),
        ];
        for case in cases {
            let text = case.to_string();
            let read: ContentBlock = serde_json::from_str(&text).expect("reads");
            assert_eq!(read, via_value(&case), "for {text}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_the_last_value_as_a_value_does() {
        let read: ContentBlock =
            serde_json::from_str(r#"{"type":"text","text":"a","text":"b"}"#).expect("reads");
        assert_eq!(read, ContentBlock::text("b"));
    }

    #[test]
    fn results_keep_unknown_fields_and_reject_what_the_derived_reader_rejected() {
        let text = r#"{"content":[{"type":"text","text":"hi"}],"structuredContent":{"n":1},"isError":false,"_meta":{"x":1},"future":[1]}"#;
        let read: CallToolResult = serde_json::from_str(text).expect("reads");
        assert_eq!(read.content, vec![ContentBlock::text("hi")]);
        assert_eq!(read.structured_content, Some(json!({"n": 1})));
        assert_eq!(read.is_error, Some(false));
        assert_eq!(read.extra.get("_meta"), Some(&json!({"x": 1})));
        assert_eq!(read.extra.get("future"), Some(&json!([1])));
        // Written back, it is the same object.
        let back = serde_json::to_value(&read).expect("writes");
        assert_eq!(back, serde_json::from_str::<Value>(text).expect("json"));

        // Defaults, and `null` where an `Option` is.
        let read: CallToolResult =
            serde_json::from_str(r#"{"structuredContent":null}"#).expect("reads");
        assert_eq!(read, CallToolResult::default());

        for bad in [
            r#"{"content":{"type":"text"}}"#,
            r#"{"content":null}"#,
            r#"{"isError":"yes"}"#,
            r#"{"content":[],"content":[]}"#,
            r#"[]"#,
            r#""text""#,
        ] {
            assert!(
                serde_json::from_str::<CallToolResult>(bad).is_err(),
                "{bad} is not a tools/call result"
            );
        }
    }
}

//! A strict JSON reader for request bodies: nesting deeper than a limit and duplicate object
//! keys are refused (two parsers reading `{"role":"user","role":"admin"}` differently is a
//! classic bypass). Built on serde_json's parser with a seed that counts depth.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` as one JSON value, refusing depth beyond `max_depth` and duplicate keys.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict { depth: 0, max: max_depth }.deserialize(&mut de).map_err(|e| tidy(&e))?;
    de.end().map_err(|e| tidy(&e))?;
    Ok(v)
}

fn tidy(e: &serde_json::Error) -> String {
    let s = e.to_string();
    // serde_json appends " at line L column C"; keep it, it helps the caller find the spot.
    s.replace("recursion limit exceeded", "nested too deeply")
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Strict {
    fn deeper<E: serde::de::Error>(self) -> Result<Strict, E> {
        if self.depth >= self.max {
            return Err(E::custom(format!("nested deeper than {} levels", self.max)));
        }
        Ok(Strict { depth: self.depth + 1, max: self.max })
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "duplicate key `{}`",
                    key.chars().take(64).collect::<String>()
                )));
            }
            let v = map.next_value_seed(inner)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_and_depth() {
        assert!(parse(br#"{"a":1,"b":[1,2,{"c":null}]}"#, 8).is_ok());
        assert!(
            parse(br#"{"role":"user","role":"admin"}"#, 8)
                .unwrap_err()
                .contains("duplicate key `role`")
        );
        assert!(parse(b"[[[[1]]]]", 3).unwrap_err().contains("nested deeper than 3"));
        assert!(parse(b"[[[1]]]", 3).is_ok());
        assert!(parse(b"{} x", 8).is_err());
        let bomb = "[".repeat(100_000);
        assert!(parse(bomb.as_bytes(), 64).is_err());
    }
}

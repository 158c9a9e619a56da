//! Content-addressed cache keys: blake3 over a canonical, versioned encoding of everything that
//! can change an output.

use std::fmt;

use serde_json::Value;

/// Bump when the encoding or the meaning of any field changes: old entries then simply miss.
pub const KEY_VERSION: u32 = 1;

/// A 32-byte blake3 cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Lower-case hex form.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Write `v` as JSON with object keys sorted at every depth and no insignificant whitespace, so
/// equal values always encode to equal bytes (whatever map order serde_json was built with).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Everything that identifies one request's output.
///
/// ```
/// use steadytext_core::cache::KeyParts;
/// let a = KeyParts { model: "m", operation: "generate", prompt: "hi", params: serde_json::json!({"seed": 1}) };
/// let b = KeyParts { params: serde_json::json!({"seed": 2}), ..a.clone() };
/// assert_ne!(a.key(), b.key());
/// ```
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// The backend's identity: model fingerprint and how it was loaded (or server and model name).
    pub model: &'a str,
    /// The operation: `generate`, `choice`, `json`, `regex`, ...
    pub operation: &'a str,
    /// The prompt exactly as the model sees it.
    pub prompt: &'a str,
    /// Every other option that changes output (max_tokens, stop, seed, the constraint in
    /// canonical form ...).
    pub params: Value,
}

impl KeyParts<'_> {
    /// The canonical encoding that is hashed.
    pub fn encode(&self) -> String {
        canonical_json(&serde_json::json!({
            "v": KEY_VERSION,
            "model": self.model,
            "op": self.operation,
            "prompt": self.prompt,
            "params": self.params,
        }))
    }

    /// The cache key.
    pub fn key(&self) -> CacheKey {
        let mut h = blake3::Hasher::new();
        h.update(b"steadytext-cache-key\0");
        h.update(self.encode().as_bytes());
        CacheKey(*h.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }

    proptest! {
        #[test]
        fn any_field_change_changes_the_key(prompt in ".{0,40}", other in ".{0,40}", seed in any::<u64>()) {
            let base = KeyParts { model: "m", operation: "generate", prompt: &prompt, params: serde_json::json!({"seed": seed}) };
            let k = base.key();
            prop_assert_eq!(k, base.clone().key());
            if other != prompt {
                prop_assert_ne!(k, KeyParts { prompt: &other, ..base.clone() }.key());
                prop_assert_ne!(k, KeyParts { model: &other, ..base.clone() }.key());
            }
            prop_assert_ne!(k, KeyParts { params: serde_json::json!({"seed": seed.wrapping_add(1)}), ..base.clone() }.key());
            prop_assert_ne!(k, KeyParts { operation: "json", ..base.clone() }.key());
        }
    }
}

//! JSON Schema handling: the seed's shorthand, validation of schemas and of outputs.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Keywords that make an object a JSON Schema rather than the seed's shorthand.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "items",
    "prefixItems",
    "enum",
    "const",
    "$ref",
    "$defs",
    "definitions",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "$schema",
    "required",
    "additionalProperties",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "if",
];

/// Normalise a schema as written by a caller.
///
/// **Shorthand** (used by both of the seed's schemas): a bare map of property schemas with no
/// JSON Schema keyword at the top level, e.g. `{"urgency": {"type": "string"}, "tags": {...}}`,
/// means an object with exactly those properties, all required, no others. Anything with a
/// schema keyword at the top level is taken as a JSON Schema as is.
///
/// ```
/// use serde_json::json;
/// let s = steadytext_core::constraint::normalize_schema(&json!({"a": {"type": "string"}})).unwrap();
/// assert_eq!(s, json!({"type": "object", "properties": {"a": {"type": "string"}},
///                      "required": ["a"], "additionalProperties": false}));
/// ```
pub fn normalize_schema(schema: &Value) -> Result<Value> {
    let obj = match schema {
        Value::Object(o) => o,
        Value::Bool(_) => return Ok(schema.clone()),
        other => {
            return Err(Error::InvalidSchema(format!(
                "a schema must be an object or a boolean, got {other}"
            )))
        }
    };
    let is_shorthand = !obj.is_empty()
        && !obj.keys().any(|k| SCHEMA_KEYWORDS.contains(&k.as_str()))
        && obj.values().all(Value::is_object);
    if !is_shorthand {
        return Ok(schema.clone());
    }
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), Value::Object(obj.clone()));
    out.insert(
        "required".into(),
        Value::Array(obj.keys().map(|k| Value::String(k.clone())).collect()),
    );
    out.insert("additionalProperties".into(), false.into());
    Ok(Value::Object(out))
}

/// Default cap on strings that have no `maxLength` (characters), applied when compiling.
pub const DEFAULT_MAX_STRING_LENGTH: u64 = 200;
/// Default cap on arrays that have no `maxItems`, applied when compiling.
pub const DEFAULT_MAX_ITEMS: u64 = 16;

/// The schema the constraint engine enforces: `schema` with every unbounded free string capped
/// at [`DEFAULT_MAX_STRING_LENGTH`] characters and every unbounded array at
/// [`DEFAULT_MAX_ITEMS`] items. Strings with `enum`, `const`, `pattern` or `format` are left
/// alone. Any value valid under the result is valid under `schema`; the caps only stop a small
/// model that loops inside a free-text field from running out of tokens. Give a field its own
/// `maxLength` / `maxItems` to choose another bound.
///
/// ```
/// use serde_json::json;
/// let b = steadytext_core::constraint::bound_schema(&json!({"type": "array", "items": {"type": "string"}}));
/// assert_eq!(b, json!({"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 200}}));
/// ```
pub fn bound_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                // Recurse into sub-schemas; leave literal values (enum, const, default, examples) alone.
                let literal = matches!(
                    k.as_str(),
                    "enum" | "const" | "default" | "examples" | "required"
                );
                out.insert(k.clone(), if literal { v.clone() } else { bound_schema(v) });
            }
            let has_type = |t: &str| match map.get("type") {
                Some(Value::String(s)) => s == t,
                Some(Value::Array(a)) => a.iter().any(|x| x == t),
                _ => false,
            };
            let free = |keys: &[&str]| !keys.iter().any(|k| map.contains_key(*k));
            if has_type("string") && free(&["maxLength", "enum", "const", "pattern", "format"]) {
                out.insert("maxLength".into(), DEFAULT_MAX_STRING_LENGTH.into());
            }
            if has_type("array") && free(&["maxItems", "enum", "const", "prefixItems"]) {
                out.insert("maxItems".into(), DEFAULT_MAX_ITEMS.into());
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(bound_schema).collect()),
        other => other.clone(),
    }
}

/// A compiled validator for a normalised schema (checks the schema itself on construction).
pub struct SchemaValidator {
    inner: jsonschema::Validator,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaValidator")
    }
}

impl SchemaValidator {
    /// Compile `schema`; an invalid schema is [`Error::InvalidSchema`].
    pub fn new(schema: &Value) -> Result<Self> {
        jsonschema::meta::validate(schema).map_err(|e| Error::InvalidSchema(e.to_string()))?;
        let inner =
            jsonschema::validator_for(schema).map_err(|e| Error::InvalidSchema(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Parse `text` as one JSON value and validate it; the reason for the first failure otherwise.
    pub fn parse_and_validate(&self, text: &str) -> std::result::Result<Value, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        if let Some(err) = self.inner.iter_errors(&value).next() {
            return Err(format!("{} at {}", err, err.instance_path()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_schemas_pass_through_and_shorthand_is_wrapped() {
        let full = json!({"type": "array", "items": {"type": "integer"}});
        assert_eq!(normalize_schema(&full).unwrap(), full);
        let seed = json!({"strategies": {"type": "array", "items": {"type": "object"}}});
        let n = normalize_schema(&seed).unwrap();
        assert_eq!(n["required"], json!(["strategies"]));
        assert_eq!(n["additionalProperties"], json!(false));
        assert!(normalize_schema(&json!("string")).is_err());
        assert!(normalize_schema(&json!(true)).is_ok());
    }

    #[test]
    fn bounds_only_unbounded_free_strings_and_arrays() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "maxLength": 5},
            "c": {"type": "string", "enum": ["x"]},
            "d": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": ["string", "null"]}},
            "e": {"type": "string", "const": "type"}
        }, "required": ["a"]});
        let b = bound_schema(&s);
        assert_eq!(b["properties"]["a"]["maxLength"], json!(200));
        assert_eq!(b["properties"]["b"]["maxLength"], json!(5));
        assert!(b["properties"]["c"].get("maxLength").is_none());
        assert_eq!(b["properties"]["d"]["maxItems"], json!(3));
        assert_eq!(b["properties"]["d"]["items"]["maxLength"], json!(200));
        assert_eq!(b["properties"]["e"], s["properties"]["e"]);
        assert_eq!(b["required"], json!(["a"]));
    }

    #[test]
    fn invalid_schemas_are_typed_errors() {
        assert!(matches!(
            SchemaValidator::new(&json!({"type": "strnig"})),
            Err(Error::InvalidSchema(_))
        ));
        assert!(matches!(
            SchemaValidator::new(&json!({"type": "array", "minItems": -1})),
            Err(Error::InvalidSchema(_))
        ));
    }

    #[test]
    fn outputs_are_parsed_and_validated() {
        let v = SchemaValidator::new(
            &json!({"type": "object", "properties": {"a": {"enum": [1, 2]}}, "required": ["a"]}),
        )
        .unwrap();
        assert_eq!(
            v.parse_and_validate(r#"{"a": 2}"#).unwrap(),
            json!({"a": 2})
        );
        assert!(v.parse_and_validate(r#"{"a": 3}"#).is_err());
        assert!(v.parse_and_validate(r#"{"a": 1"#).is_err());
        assert!(v.parse_and_validate(r#"{}"#).is_err());
    }
}

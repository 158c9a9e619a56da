//! JSON Schema to a GBNF grammar with fixed separators, for llama-server.
//!
//! llama-server's own `json_schema` conversion lets the model put free whitespace (newlines,
//! spaces before `:`) between tokens, and the small default model fills it and then loses the
//! thread (measured: the seed's ticket schema ran out of 256 tokens that way). This converter
//! writes the one layout the local backend uses too: `{"a": 1, "b": [2, 3]}` (`": "` and `", "`,
//! no other whitespace), with every property in schema order.
//!
//! It covers what the engine's schemas use: objects (every listed property is written, which any
//! schema without `additionalProperties` tricks accepts), arrays with `minItems`/`maxItems`,
//! strings with `minLength`/`maxLength`, `enum`, `const`, booleans, null, plain integers and
//! numbers, `anyOf`, type lists and local `$ref`s. Anything else (`pattern`, `format`, numeric
//! bounds, `oneOf`, `allOf`, ...) returns `None` and the caller sends the schema as `json_schema`
//! for the server to convert. The engine validates the result either way.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::http::protocol::gbnf_escape;

/// Keywords that never restrict the value.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "readOnly",
    "writeOnly",
    "deprecated",
    "$defs",
    "definitions",
];

/// Keywords this converter enforces.
const ENFORCED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "enum",
    "const",
    "anyOf",
    "$ref",
];

/// Longest string (in characters) allowed when a string has no `maxLength`.
const FALLBACK_MAX_LENGTH: u64 = 200;

/// The grammar for `schema` (already normalised and bounded), or `None` when it uses something
/// this converter does not enforce.
pub fn schema_to_gbnf(schema: &Value) -> Option<String> {
    let mut g = Grammar {
        root: schema,
        rules: BTreeMap::new(),
        refs: BTreeMap::new(),
        next: 0,
    };
    let body = g.value(schema, 0)?;
    let mut out = format!("root ::= {body}\n");
    out.push_str(r#"char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"#);
    out.push('\n');
    for (name, rule) in &g.rules {
        out.push_str(&format!("{name} ::= {rule}\n"));
    }
    Some(out)
}

struct Grammar<'a> {
    root: &'a Value,
    rules: BTreeMap<String, String>,
    refs: BTreeMap<String, String>,
    next: usize,
}

fn literal(text: &str) -> String {
    format!("\"{}\"", gbnf_escape(text))
}

impl<'a> Grammar<'a> {
    fn rule(&mut self, body: String) -> String {
        let name = format!("r{}", self.next);
        self.next += 1;
        self.rules.insert(name.clone(), body);
        name
    }

    /// An expression for `schema` (a rule name or an inline group).
    fn value(&mut self, schema: &'a Value, depth: usize) -> Option<String> {
        if depth > 32 {
            return None;
        }
        let map = match schema {
            Value::Bool(true) => return None,
            Value::Object(m) => m,
            _ => return None,
        };
        if map
            .keys()
            .any(|k| !ANNOTATIONS.contains(&k.as_str()) && !ENFORCED.contains(&k.as_str()))
        {
            return None;
        }
        if let Some(r) = map.get("$ref").and_then(Value::as_str) {
            if map.len() > 1
                && map
                    .keys()
                    .any(|k| k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
            {
                return None;
            }
            return self.reference(r, depth);
        }
        if let Some(values) = map.get("enum").and_then(Value::as_array) {
            let alts: Vec<String> = values.iter().map(|v| literal(&v.to_string())).collect();
            return (!alts.is_empty()).then(|| format!("({})", alts.join(" | ")));
        }
        if let Some(v) = map.get("const") {
            return Some(literal(&v.to_string()));
        }
        if let Some(alts) = map.get("anyOf").and_then(Value::as_array) {
            if map.contains_key("type") {
                return None;
            }
            let parts: Option<Vec<String>> =
                alts.iter().map(|a| self.value(a, depth + 1)).collect();
            return Some(format!("({})", parts?.join(" | ")));
        }
        match map.get("type") {
            Some(Value::String(t)) => self.typed(t, map, depth),
            Some(Value::Array(types)) => {
                let parts: Option<Vec<String>> = types
                    .iter()
                    .map(|t| self.typed(t.as_str()?, map, depth))
                    .collect();
                Some(format!("({})", parts?.join(" | ")))
            }
            _ => None,
        }
    }

    fn reference(&mut self, r: &str, depth: usize) -> Option<String> {
        if let Some(name) = self.refs.get(r) {
            return Some(name.clone());
        }
        let pointer = r.strip_prefix('#')?;
        let target = self.root.pointer(pointer)?;
        let name = format!("r{}", self.next);
        self.next += 1;
        self.refs.insert(r.to_string(), name.clone());
        let body = self.value(target, depth + 1)?;
        self.rules.insert(name.clone(), body);
        Some(name)
    }

    fn typed(&mut self, t: &str, map: &'a Map<String, Value>, depth: usize) -> Option<String> {
        match t {
            "null" => Some(literal("null")),
            "boolean" => Some(format!("({} | {})", literal("true"), literal("false"))),
            "integer" => Some(r#"("-"? ("0" | [1-9] [0-9]{0,15}))"#.to_string()),
            "number" => Some(
                r#"("-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?)"#
                    .to_string(),
            ),
            "string" => {
                let min = map.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                let max = map
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(FALLBACK_MAX_LENGTH);
                (min <= max).then(|| format!(r#"("\"" char{{{min},{max}}} "\"")"#))
            }
            "array" => {
                let items = map.get("items")?;
                let item = self.value(items, depth + 1)?;
                let min = map.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                let max = map.get("maxItems").and_then(Value::as_u64).unwrap_or(16);
                if min > max {
                    return None;
                }
                let body = match (min, max) {
                    (_, 0) => literal("[]"),
                    (0, m) => format!(r#""[" ({item} ("," " " {item}){{0,{}}})? "]""#, m - 1),
                    (n, m) => format!(r#""[" {item} ("," " " {item}){{{},{}}} "]""#, n - 1, m - 1),
                };
                Some(self.rule(body))
            }
            "object" => {
                let properties = map.get("properties").and_then(Value::as_object);
                // Written properties must include every required one.
                if let Some(required) = map.get("required").and_then(Value::as_array) {
                    let listed = |k: &Value| {
                        k.as_str()
                            .is_some_and(|k| properties.is_some_and(|p| p.contains_key(k)))
                    };
                    if !required.iter().all(listed) {
                        return None;
                    }
                }
                let mut parts = Vec::new();
                for (key, sub) in properties.into_iter().flatten() {
                    let value = self.value(sub, depth + 1)?;
                    let key_json = Value::String(key.clone()).to_string();
                    parts.push(format!("{} {}", literal(&format!("{key_json}: ")), value));
                }
                let body = if parts.is_empty() {
                    literal("{}")
                } else {
                    format!(
                        "\"{{\" {} \"}}\"",
                        parts.join(&format!(" {} ", literal(", ")))
                    )
                };
                Some(self.rule(body))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_with_enums_strings_and_arrays() {
        let g = schema_to_gbnf(&json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "enum": ["x", "y"]},
                "b": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
                "c": {"type": "boolean"}
            },
            "required": ["a", "b", "c"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(g.starts_with("root ::= r1\n"), "{g}");
        assert!(
            g.contains(
                r#"r0 ::= "[" (("\"" char{0,5} "\"") ("," " " ("\"" char{0,5} "\"")){0,2})? "]""#
            ),
            "{g}"
        );
        assert!(g.contains(r#""{" "\"a\": " ("\"x\"" | "\"y\"") ", " "\"b\": " r0 ", " "\"c\": " ("true" | "false") "}""#), "{g}");
    }

    #[test]
    fn unsupported_keywords_fall_back() {
        assert!(schema_to_gbnf(&json!({"type": "string", "pattern": "a+"})).is_none());
        assert!(schema_to_gbnf(&json!({"type": "integer", "multipleOf": 7})).is_none());
        assert!(
            schema_to_gbnf(&json!({"type": "object", "properties": {}, "required": ["x"]}))
                .is_none()
        );
    }

    #[test]
    fn local_refs_and_nullable_types() {
        let g = schema_to_gbnf(&json!({
            "type": "object",
            "properties": {"v": {"$ref": "#/$defs/V"}, "n": {"type": ["integer", "null"]}},
            "required": ["v"],
            "$defs": {"V": {"type": "string", "enum": ["p", "q"]}}
        }))
        .unwrap();
        assert!(g.contains(r#"r0 ::= ("\"p\"" | "\"q\"")"#), "{g}");
        assert!(g.contains(r#"| "null")"#), "{g}");
    }
}

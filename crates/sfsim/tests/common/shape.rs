//! Structural comparison of JSON documents for conformance tests: same keys and value types,
//! values ignored (the corpus's values are illustrative).

use serde_json::Value as J;

/// How strictly object keys must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Exactly the same key set.
    Exact,
    /// Ours may have keys the example lacks (newer API versions add keys).
    AllowExtra,
}

/// The differences between `example` (from the corpus) and `ours`, as readable paths.
/// A `null` on either side matches any type: nullability is data-dependent.
pub fn shape_diff(example: &J, ours: &J, keys: Keys) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("$", example, ours, keys, &mut out);
    out
}

pub fn kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn diff_at(path: &str, example: &J, ours: &J, keys: Keys, out: &mut Vec<String>) {
    match (example, ours) {
        (J::Null, _) | (_, J::Null) => {}
        (J::Object(e), J::Object(o)) => {
            for k in e.keys() {
                match o.get(k) {
                    Some(ov) => diff_at(&format!("{path}.{k}"), &e[k], ov, keys, out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
            if keys == Keys::Exact {
                for k in o.keys().filter(|k| !e.contains_key(*k)) {
                    out.push(format!("{path}.{k}: not in the example"));
                }
            }
        }
        (J::Array(e), J::Array(o)) => {
            if let Some(first) = e.first() {
                for (i, item) in o.iter().enumerate() {
                    // Heterogeneous arrays (mixed record types) compare against the example item
                    // of the same index when there is one.
                    let model = e.get(i).unwrap_or(first);
                    diff_at(&format!("{path}[{i}]"), model, item, keys, out);
                }
            }
        }
        (e, o) if kind(e) != kind(o) => out.push(format!("{path}: {} in the example, {} in ours", kind(e), kind(o))),
        _ => {}
    }
}

/// Panics with every difference listed.
#[track_caller]
pub fn assert_same_shape(what: &str, example: &J, ours: &J, keys: Keys) {
    let diff = shape_diff(example, ours, keys);
    assert!(diff.is_empty(), "{what}: shape differs from the corpus:\n  {}\nours: {ours}", diff.join("\n  "));
}

/// Like [`assert_same_shape`] with exact top-level keys, except that the keys in
/// `allow_extra` may appear only in ours and those in `allow_missing` only in the example.
#[track_caller]
pub fn assert_shape_except(what: &str, example: &J, ours: &J, allow_extra: &[&str], allow_missing: &[&str]) {
    let diff: Vec<String> = shape_diff(example, ours, Keys::Exact)
        .into_iter()
        .filter(|d| !allow_extra.iter().any(|k| *d == format!("$.{k}: not in the example")))
        .filter(|d| !allow_missing.iter().any(|k| *d == format!("$.{k}: missing")))
        .collect();
    assert!(diff.is_empty(), "{what}: shape differs from the corpus:\n  {}\nours: {ours}", diff.join("\n  "));
}

/// [`assert_same_shape`] with exact keys, plus the same top-level key order (Salesforce's write
/// results are compared this way).
#[track_caller]
pub fn assert_same_shape_in_order(what: &str, example: &J, ours: &J) {
    let keys = |v: &J| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(ours), keys(example), "{what}: key order of {ours}");
    assert_same_shape(what, example, ours, Keys::Exact);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_keys_and_types_not_values() {
        let e = json!({"a": 1, "b": [{"c": "x"}], "d": null});
        assert!(shape_diff(&e, &json!({"a": 2, "b": [{"c": "y"}, {"c": "z"}], "d": true}), Keys::Exact).is_empty());
        assert_eq!(
            shape_diff(&e, &json!({"a": "1", "b": [], "d": null}), Keys::Exact),
            vec!["$.a: number in the example, string in ours"]
        );
        assert_eq!(shape_diff(&e, &json!({"a": 1, "b": [{"c": 1}], "d": 1, "e": 0}), Keys::Exact).len(), 2);
        assert!(shape_diff(&e, &json!({"a": 1, "b": [], "d": 1, "e": 0}), Keys::AllowExtra).is_empty());
    }
}

//! Loading YAML configuration: `${ENV}` substitution, unknown fields refused, and errors that
//! name the dotted path of the offending field — all before any network call.
//!
//! Substitution happens on parsed string values, not on the raw text, so a secret containing
//! YAML syntax (`:`, `#`, quotes) can never change the document's structure.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value as Yaml;

/// A configuration problem. `path` is the dotted field path (`salesforce.auth.client_id`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {message}")]
    Read { file: String, message: String },
    #[error("config is not valid YAML (line {line}, column {column}): {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("{path}: environment variable {var} is not set (use ${{{var}:-default}} for a default)")]
    MissingEnv { path: String, var: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    /// A validation error for `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { path: path.into(), message: message.into() }
    }
}

/// Reads a YAML file, substitutes `${VAR}` / `${VAR:-default}` from `env`, and deserialises it.
pub fn load_file<T: DeserializeOwned>(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { file: path.display().to_string(), message: e.to_string() })?;
    load_str(&text, env)
}

/// [`load_file`] of `base` with `overlay` laid over it (an environment's file, such as
/// `tidemark.prod.yaml` over `tidemark.yaml`): mappings merge key by key, at any depth; any
/// other value of the overlay (a scalar, a list) replaces the base's. Substitution and
/// validation happen once, on the merged document.
pub fn load_file_with_overlay<T: DeserializeOwned>(
    base: &Path,
    overlay: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let read = |path: &Path| -> Result<Yaml, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { file: path.display().to_string(), message: e.to_string() })?;
        parse(&text).map_err(|e| match e {
            ConfigError::Syntax { line, column, message } => {
                ConfigError::Syntax { line, column, message: format!("{}: {message}", path.display()) }
            }
            other => other,
        })
    };
    let mut doc = read(base)?;
    merge(&mut doc, read(overlay)?);
    deserialize(doc, env)
}

/// Lays `over` onto `base` (see [`load_file_with_overlay`]).
fn merge(base: &mut Yaml, over: Yaml) {
    match (base, over) {
        (Yaml::Mapping(base), Yaml::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn parse(text: &str) -> Result<Yaml, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        ConfigError::Syntax { line, column, message: e.to_string() }
    })
}

/// Like [`load_file`] from a string.
pub fn load_str<T: DeserializeOwned>(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError> {
    deserialize(parse(text)?, env)
}

fn deserialize<T: DeserializeOwned>(mut doc: Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError> {
    substitute(&mut doc, "", env)?;
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        if is_secret_path(&path) {
            message = redact_quoted(&message);
        }
        ConfigError::Invalid { path: if path == "." { "(top level)".to_owned() } else { path }, message }
    })
}

/// The process environment, for [`load_file`].
/// Key names whose values are secrets: their values never appear in an error.
fn is_secret_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["secret", "password", "token", "key", "credential"].iter().any(|w| lower.contains(w))
}

/// Replaces what serde quotes in a message (`` `value` `` or `"value"`) with `…`.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("…");
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '"' => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

const SECRET_NOT_TEXT: &str = "must be text: put the value in quotes (YAML reads unquoted digits or true/false as a \
     number or a flag, which can change the value); the value is not shown";

struct SecretVisitor;

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = secrecy::SecretString;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a secret as quoted text")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(secrecy::SecretString::from(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(secrecy::SecretString::from(v))
    }

    // Numbers and flags are refused without echoing them, which serde's own error would do.
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }
}

/// `deserialize_with` for secret fields: text only, and an error never shows the value.
pub fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<secrecy::SecretString, D::Error> {
    d.deserialize_any(SecretVisitor)
}

/// A secret through [`secret`], for use inside other types.
struct TextSecret(secrecy::SecretString);

impl<'de> serde::Deserialize<'de> for TextSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        secret(d).map(TextSecret)
    }
}

/// [`secret`] for an optional field.
pub fn optional_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<secrecy::SecretString>, D::Error> {
    Ok(<Option<TextSecret> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

/// [`secret`] for every value of a map (storage options: credentials among other settings).
pub fn secret_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, secrecy::SecretString>, D::Error> {
    let map = <std::collections::BTreeMap<String, TextSecret> as serde::Deserialize>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Parses `90s`, `5m`, `24h`, `7d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration like 30s, 5m, 24h or 7d"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => return Err(format!("unknown duration unit '{other}' (use s, m, h or d)")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

pub fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    match <DurationText as serde::Deserialize>::deserialize(d)? {
        DurationText::Seconds(n) => Ok(std::time::Duration::from_secs(n)),
        DurationText::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

pub fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    duration(d).map(Some)
}

pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

fn substitute(v: &mut Yaml, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    match v {
        Yaml::String(s) if s.contains("${") => *s = expand(s, path, env)?,
        Yaml::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Yaml::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                substitute(item, &child, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands `${VAR}`, `${VAR:-default}`; `$${` escapes a literal `${`.
fn expand(s: &str, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| ConfigError::invalid(path, "unterminated ${ in value"))?;
        let expr = &after[..end];
        let (var, default) = match expr.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (expr, None),
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(path, format!("'${{{expr}}}' is not a valid variable reference")));
        }
        match (env(var), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(ConfigError::MissingEnv { path: path.to_owned(), var: var.to_owned() }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        name: String,
        auth: Auth,
        #[serde(default)]
        objects: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Auth {
        client_id: String,
        secret: String,
        port: u16,
    }

    fn env(var: &str) -> Option<String> {
        match var {
            "SECRET" => Some("s3cr3t: #not yaml".to_owned()),
            "PORT" => Some("8443".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn an_overlay_merges_mappings_and_replaces_the_rest() {
        let dir = std::env::temp_dir().join(format!("tidemark-overlay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (base, prod) = (dir.join("tidemark.yaml"), dir.join("tidemark.prod.yaml"));
        std::fs::write(
            &base,
            "lake:\n  location: ./lake\nsync:\n  parallelism: 2\n  objects: [Account, Contact]\nsecret: ${S}\n",
        )
        .unwrap();
        std::fs::write(&prod, "lake:\n  location: s3://prod/lake\nsync:\n  objects: [Account]\n").unwrap();
        let merged: Yaml = load_file_with_overlay(&base, &prod, &|v| (v == "S").then(|| "x".to_owned())).unwrap();
        let expected: Yaml = serde_yaml_ng::from_str(
            "lake:\n  location: s3://prod/lake\nsync:\n  parallelism: 2\n  objects: [Account]\nsecret: x\n",
        )
        .unwrap();
        assert_eq!(merged, expected);
        std::fs::write(&prod, "lake: [\n").unwrap();
        let err = load_file_with_overlay::<Yaml>(&base, &prod, &|_| None).unwrap_err().to_string();
        assert!(err.contains("tidemark.prod.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn substitutes_env_in_values_only() {
        let c: Conf = load_str(
            "name: demo\nauth:\n  client_id: ${MISSING:-abc}\n  secret: ${SECRET}\n  port: 1\nobjects: [a, '$${literal}']\n",
            &env,
        )
        .unwrap();
        assert_eq!(c.auth.secret, "s3cr3t: #not yaml");
        assert_eq!(c.auth.client_id, "abc");
        assert_eq!(c.objects, vec!["a".to_owned(), "${literal}".to_owned()]);
    }

    #[test]
    fn errors_name_the_dotted_field() {
        let e = load_str::<Conf>("name: x\nauth:\n  client_id: a\n  secret: ${NOPE}\n  port: 1\n", &env).unwrap_err();
        assert_eq!(e, ConfigError::MissingEnv { path: "auth.secret".into(), var: "NOPE".into() });
        let e = load_str::<Conf>("name: x\nauth:\n  client_id: a\n  secret: b\n  port: 1\n  colour: red\n", &env).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { path, message } if path == "auth.colour" && message.contains("unknown field")),
            "{e}"
        );
        let e = load_str::<Conf>("name: x\nauth:\n  client_id: a\n  secret: b\n  port: lots\n", &env).unwrap_err();
        assert!(matches!(&e, ConfigError::Invalid { path, .. } if path == "auth.port"), "{e}");
        let e = load_str::<Conf>("name: [unclosed\n", &env).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithSecrets {
        #[serde(deserialize_with = "secret")]
        client_secret: secrecy::SecretString,
        #[serde(default, deserialize_with = "optional_secret")]
        token: Option<secrecy::SecretString>,
        #[serde(default, deserialize_with = "secret_map")]
        options: std::collections::BTreeMap<String, secrecy::SecretString>,
        #[serde(default)]
        api_key: Option<String>,
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        use secrecy::ExposeSecret;
        let ok = load_str::<WithSecrets>("client_secret: '873100'\ntoken: abc\noptions: {K: v}\n", &env).unwrap();
        assert_eq!(ok.client_secret.expose_secret(), "873100");
        assert_eq!(ok.token.unwrap().expose_secret(), "abc");
        assert_eq!(ok.options["K"].expose_secret(), "v");
        assert_eq!(ok.api_key, None);
        for (text, path) in [
            ("client_secret: 8731942200561234\n", "client_secret"),
            ("client_secret: '1'\ntoken: 8731942200561234\n", "token"),
            ("client_secret: '1'\noptions: {AWS_SECRET_ACCESS_KEY: 8731942200561234}\n", "options.AWS_SECRET_ACCESS_KEY"),
            ("client_secret: true\n", "client_secret"),
            // Not a secret type, but a secret-looking name: serde's own message is redacted.
            ("client_secret: '1'\napi_key: [8731942200561234]\n", "api_key"),
        ] {
            let e = load_str::<WithSecrets>(text, &env).unwrap_err();
            let shown = e.to_string();
            assert!(!shown.contains("8731942200561234") && !shown.contains("`true`"), "{shown}");
            assert!(matches!(&e, ConfigError::Invalid { path: p, .. } if p == path), "{shown}");
        }
    }

    #[test]
    fn redaction_replaces_quoted_values() {
        assert_eq!(
            redact_quoted("invalid type: integer `8731`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(redact_quoted("invalid value: string \"hunter2\""), "invalid value: string \"…\"");
    }

    #[test]
    fn syntax_errors_still_parse() {
        let e = load_str::<Conf>("name: [unclosed\n", &env).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    }
}

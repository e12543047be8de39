//! Bulk API 1.0 XML: reading `<jobInfo>` requests with quick-xml and writing responses in the
//! `http://www.force.com/2009/06/asyncapi/dataload` namespace (every value escaped).

use std::collections::HashMap;

use quick_xml::events::Event;
use serde_json::Value as J;

pub const NAMESPACE: &str = "http://www.force.com/2009/06/asyncapi/dataload";
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// Why a request body is not the XML we expect. Shown as an `InvalidXML` exception message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("Failed to parse XML: {0}")]
    Syntax(String),
    #[error("Expected a <{expected}> document, found <{found}>")]
    WrongRoot { expected: &'static str, found: String },
}

/// The text of each child element of the root `<root>` (e.g. `operation`, `object`).
pub fn parse_flat(text: &str, root: &'static str) -> Result<HashMap<String, String>, XmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut current: Option<String> = None;
    let mut fields = HashMap::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if depth == 1 && name != root {
                    return Err(XmlError::WrongRoot { expected: root, found: name });
                }
                if depth == 2 {
                    fields.insert(name.clone(), String::new());
                    current = Some(name);
                }
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if depth == 0 {
                    return if name == root { Ok(fields) } else { Err(XmlError::WrongRoot { expected: root, found: name }) };
                }
                if depth == 1 {
                    fields.insert(name, String::new());
                }
            }
            Ok(Event::Text(t)) => {
                if depth == 2
                    && let Some(name) = &current
                {
                    let value = t.unescape().map_err(|e| XmlError::Syntax(e.to_string()))?;
                    fields.insert(name.clone(), value.into_owned());
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                if depth < 2 {
                    current = None;
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(XmlError::Syntax(e.to_string())),
        }
    }
    if depth != 0 {
        return Err(XmlError::Syntax("unexpected end of document".to_owned()));
    }
    Ok(fields)
}

/// Appends `<name>value</name>` with the value escaped.
pub fn element(out: &mut String, name: &str, value: &str) {
    out.push_str(" <");
    out.push_str(name);
    out.push('>');
    out.push_str(&quick_xml::escape::escape(value));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// Opens a namespaced root element.
pub fn open_root(out: &mut String, name: &str) {
    out.push_str(DECLARATION);
    out.push('<');
    out.push_str(name);
    out.push_str("\n   xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\">\n");
}

/// Renders a JSON object (`key → scalar`) as the children of `root`, in key order.
pub fn object_document(root: &str, fields: &serde_json::Map<String, J>) -> String {
    let mut out = String::with_capacity(512);
    open_root(&mut out, root);
    for (k, v) in fields {
        element(&mut out, k, &scalar_text(v));
    }
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    out
}

fn scalar_text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Null => String::new(),
        other => other.to_string(),
    }
}

/// One query result record (REST-shaped JSON with `attributes`) as a Bulk 1.0 XML `<records>`.
pub fn record_xml(out: &mut String, tag: &str, record: &J) {
    let Some(map) = record.as_object() else { return };
    out.push('<');
    out.push_str(tag);
    out.push_str(" xsi:type=\"sObject\">");
    if let Some(ty) = map.get("attributes").and_then(|a| a.get("type")).and_then(J::as_str) {
        out.push_str("<type>");
        out.push_str(&quick_xml::escape::escape(ty));
        out.push_str("</type>");
    }
    for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "attributes") {
        match v {
            J::Null => {
                out.push('<');
                out.push_str(k);
                out.push_str(" xsi:nil=\"true\"/>");
            }
            J::Object(_) => record_xml(out, k, v),
            other => {
                out.push('<');
                out.push_str(k);
                out.push('>');
                out.push_str(&quick_xml::escape::escape(scalar_text(other)));
                out.push_str("</");
                out.push_str(k);
                out.push('>');
            }
        }
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_job_info_request() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jobInfo xmlns=\"http://www.force.com/2009/06/asyncapi/dataload\">\n <operation>query</operation>\n <object>Account</object>\n <contentType>CSV</contentType>\n</jobInfo>";
        let f = parse_flat(body, "jobInfo").unwrap();
        assert_eq!(f["operation"], "query");
        assert_eq!(f["object"], "Account");
        assert_eq!(f["contentType"], "CSV");
        assert!(matches!(parse_flat("<batchInfo/>", "jobInfo"), Err(XmlError::WrongRoot { .. })));
        assert!(matches!(parse_flat("<jobInfo><state>Closed</jobInfo>", "jobInfo"), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn escapes_what_it_writes() {
        let mut m = serde_json::Map::new();
        m.insert("stateMessage".into(), J::String("a < b & \"c\"".into()));
        let doc = object_document("batchInfo", &m);
        assert!(doc.contains("<stateMessage>a &lt; b &amp; &quot;c&quot;</stateMessage>"), "{doc}");
        assert!(doc.starts_with(DECLARATION));
    }
}

//! The SOAP partner API (`POST /services/Soap/u/{version}`) for what REST does not offer:
//! `undelete(ids)`, restoring records from the recycle bin.
//!
//! Requests are SOAP 1.1 envelopes in the `urn:partner.soap.sforce.com` namespace, with the
//! session in `<SessionHeader><sessionId>`; the executor writes the envelope at each attempt
//! (see [`crate::client::Body::Soap`]), so retries, session renewal, the budget and the request
//! count work as for REST. Responses are parsed with quick-xml, by namespace and local name, so
//! any prefixes work. Faults (`<soapenv:Fault>`, always HTTP 500) become
//! [`SalesforceError::SoapFault`] classified by their `sf:` code. Usage reported in the SOAP
//! `LimitInfoHeader` (`API REQUESTS`) feeds the budget like `Sforce-Limit-Info`.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::client::{Request, SalesforceClient};
use crate::error::SalesforceError;
use crate::usage::ApiUsage;
use crate::write::{RowError, RowOutcome, WriteError, send_with_lock_retries};

const SOAP_ENV_NS: &[u8] = b"http://schemas.xmlsoap.org/soap/envelope/";
const PARTNER_NS: &[u8] = b"urn:partner.soap.sforce.com";

/// Ids per `undelete` call (Salesforce's limit).
pub const MAX_UNDELETE_IDS: usize = 200;

/// The envelope around `body_xml`, with the session header.
pub(crate) fn envelope(session_id: &str, body_xml: &str) -> String {
    let mut out = String::with_capacity(body_xml.len() + session_id.len() + 400);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">"#,
    );
    out.push_str("<soapenv:Header><urn:SessionHeader><urn:sessionId>");
    out.push_str(&escape(session_id));
    out.push_str("</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body>");
    out.push_str(body_xml);
    out.push_str("</soapenv:Body></soapenv:Envelope>");
    out
}

/// A parsed XML element tree (only what SOAP answers need: names, text, children).
#[derive(Debug, Default)]
struct Node {
    ns_soap: bool,
    ns_partner: bool,
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The first descendant (depth first) named `name` that satisfies `pred`.
    fn find(&self, pred: &dyn Fn(&Node) -> bool) -> Option<&Node> {
        if pred(self) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(pred))
    }
}

/// Parses an XML document into a tree; `None` when it is not well-formed XML.
fn parse_tree(xml: &[u8]) -> Option<Node> {
    let text = std::str::from_utf8(xml).ok()?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let node_of = |local: &[u8]| {
            let bound: &[u8] = match &ns {
                ResolveResult::Bound(n) => n.as_ref(),
                _ => b"",
            };
            Node {
                ns_soap: bound == SOAP_ENV_NS,
                ns_partner: bound == PARTNER_NS,
                name: String::from_utf8_lossy(local).into_owned(),
                ..Node::default()
            }
        };
        match event {
            Event::Start(ref e) => {
                let node = node_of(e.local_name().as_ref());
                stack.push(node);
            }
            Event::Empty(ref e) => {
                let node = node_of(e.local_name().as_ref());
                stack.last_mut()?.children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop()?;
                stack.last_mut()?.children.push(node);
            }
            Event::Text(t) => {
                let t = t.unescape().ok()?;
                stack.last_mut()?.text.push_str(&t);
            }
            Event::CData(c) => stack.last_mut()?.text.push_str(&String::from_utf8_lossy(&c)),
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return None;
    }
    stack.pop()
}

/// The `(code, message)` of a SOAP fault body, or `None` when the body is not one. The code is
/// the `faultcode` without its prefix (`sf:INVALID_SESSION_ID` → `INVALID_SESSION_ID`); the
/// message is the detail's `exceptionMessage` when there is one, else the `faultstring`.
pub(crate) fn parse_fault(body: &[u8]) -> Option<(String, String)> {
    if !body.trim_ascii_start().starts_with(b"<") {
        return None;
    }
    let root = parse_tree(body)?;
    let fault = root.find(&|n| n.ns_soap && n.name == "Fault")?;
    let code = fault.text_of("faultcode").unwrap_or("Server");
    let code = code.rsplit_once(':').map_or(code, |(_, c)| c).to_owned();
    let detail_message = fault.child("detail").and_then(|d| d.find(&|n| n.name == "exceptionMessage")).map(|n| n.text.trim());
    let message = detail_message.or_else(|| fault.text_of("faultstring")).unwrap_or_default().to_owned();
    Some((code, message))
}

/// `API REQUESTS` usage from a SOAP `LimitInfoHeader`.
fn limit_info(root: &Node) -> Option<ApiUsage> {
    let header = root.find(&|n| n.ns_soap && n.name == "Header")?;
    let limit = header.find(&|n| n.name == "limitInfo" && n.text_of("type") == Some("API REQUESTS"))?;
    Some(ApiUsage { used: limit.text_of("current")?.parse().ok()?, max: limit.text_of("limit")?.parse().ok()? })
}

/// The `<result>`s of an `undeleteResponse`, in order.
fn undelete_results(body: &[u8]) -> Result<(Vec<RowOutcome>, Option<ApiUsage>), String> {
    let root = parse_tree(body).ok_or("the answer is not well-formed XML")?;
    let response = root.find(&|n| n.ns_partner && n.name == "undeleteResponse").ok_or("the answer has no undeleteResponse")?;
    let mut out = Vec::new();
    for result in response.children("result") {
        let success = result.text_of("success") == Some("true");
        let id = result.text_of("id").filter(|id| !id.is_empty());
        out.push(match (success, id) {
            (true, Some(id)) => RowOutcome::Success { id: id.to_owned(), created: false },
            (true, None) => return Err("a successful result has no id".into()),
            (false, _) => RowOutcome::Failed {
                errors: result
                    .children("errors")
                    .map(|e| RowError {
                        status_code: e.text_of("statusCode").unwrap_or_default().to_owned(),
                        message: e.text_of("message").unwrap_or_default().to_owned(),
                        // `<fields xsi:nil="true"/>` names no field.
                        fields: e.children("fields").map(|f| f.text.trim().to_owned()).filter(|f| !f.is_empty()).collect(),
                    })
                    .collect(),
            },
        });
    }
    Ok((out, limit_info(&root)))
}

impl SalesforceClient {
    /// `/services/Soap/u/{version}` on the instance.
    pub fn soap_path(&self) -> String {
        format!("/services/Soap/u/{}", self.config().api_version)
    }

    /// Restores records from the recycle bin (SOAP partner `undelete`), at most
    /// [`MAX_UNDELETE_IDS`] per call, one outcome per id in input order: success with the id, or
    /// Salesforce's errors (e.g. `UNDELETE_FAILED` for a record that is not in the recycle bin,
    /// `ENTITY_IS_DELETED`/`INVALID_ID_FIELD` for a purged or unknown one). Ids failing with
    /// `UNABLE_TO_LOCK_ROW` are re-sent like Collections rows; a whole-call failure stops with a
    /// [`WriteError`] keeping the outcomes of the calls already answered.
    ///
    /// Idempotent in effect: a call whose answer was lost is repeated by the executor, and ids
    /// the lost attempt restored then report an error (they are no longer in the recycle bin)
    /// although the record is live. Check with a `queryAll` of `IsDeleted` when it matters.
    pub async fn undelete(&self, ids: &[impl AsRef<str>]) -> Result<Vec<RowOutcome>, WriteError> {
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        let mut outcomes = vec![RowOutcome::NotProcessed; ids.len()];
        let all: Vec<usize> = (0..ids.len()).collect();
        for chunk in all.chunks(MAX_UNDELETE_IDS) {
            let send = |rows: Vec<usize>| {
                let ids = &ids;
                async move { self.send_undelete(&rows.iter().map(|&i| ids[i]).collect::<Vec<_>>()).await }
            };
            if let Err(error) = send_with_lock_retries(self, &mut outcomes, chunk.to_vec(), send).await {
                return Err(WriteError { error, outcomes });
            }
        }
        Ok(outcomes)
    }

    /// One `undelete` call.
    async fn send_undelete(&self, ids: &[&str]) -> Result<Vec<RowOutcome>, SalesforceError> {
        let mut body = String::with_capacity(40 + ids.len() * 40);
        body.push_str("<urn:undelete>");
        for id in ids {
            body.push_str("<urn:ids>");
            body.push_str(&escape(*id));
            body.push_str("</urn:ids>");
        }
        body.push_str("</urn:undelete>");
        let resp = self.execute(&Request::soap(self.soap_path(), "undelete", body)).await?;
        let decode = |detail: String| SalesforceError::Decode { what: "SOAP undelete answer".into(), detail };
        let (results, usage) = undelete_results(&resp.body).map_err(decode)?;
        if let Some(usage) = usage {
            self.record_usage(usage);
        }
        if results.len() != ids.len() {
            return Err(decode(format!("{} results for {} ids", results.len(), ids.len())));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_undelete_response_with_its_limit_header() {
        // The shape of a real partner answer (enterprise namespace swapped for partner).
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">
  <soapenv:Header><LimitInfoHeader><limitInfo><current>3917</current><limit>15000</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>
  <soapenv:Body><undeleteResponse>
    <result><errors><message>Entity type is not undeletable</message><statusCode>CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY</statusCode></errors><id>01I28000001HT0sEAG</id><success>false</success></result>
    <result><errors xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><id>001000000000001AAA</id><success>true</success></result>
  </undeleteResponse></soapenv:Body></soapenv:Envelope>"#;
        let (results, usage) = undelete_results(xml.as_bytes()).unwrap();
        assert_eq!(usage, Some(ApiUsage { used: 3917, max: 15000 }));
        assert_eq!(results[0].errors()[0].status_code, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY");
        assert_eq!(results[0].errors()[0].message, "Entity type is not undeletable");
        assert_eq!(results[1], RowOutcome::Success { id: "001000000000001AAA".into(), created: false });
    }

    #[test]
    fn parses_faults_by_namespace_with_any_prefix() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><s:Body><s:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring><detail><sf:UnexpectedErrorFault><sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode><sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session</sf:exceptionMessage></sf:UnexpectedErrorFault></detail></s:Fault></s:Body></s:Envelope>"#;
        let (code, message) = parse_fault(xml.as_bytes()).unwrap();
        assert_eq!(code, "INVALID_SESSION_ID");
        assert_eq!(message, "Invalid Session ID found in SessionHeader: Illegal Session");
        let client = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault><faultcode>soapenv:Client</faultcode><faultstring>No operation available</faultstring></e:Fault></e:Body></e:Envelope>"#;
        assert_eq!(parse_fault(client.as_bytes()), Some(("Client".into(), "No operation available".into())));
        assert_eq!(parse_fault(br#"[{"errorCode":"X","message":"y"}]"#), None);
        assert_eq!(parse_fault(b"<html><body>bad gateway</body></html>"), None);
    }

    #[test]
    fn the_envelope_escapes_and_carries_the_session() {
        let env = envelope("00D!a<b", "<urn:undelete><urn:ids>001</urn:ids></urn:undelete>");
        assert!(env.contains("<urn:sessionId>00D!a&lt;b</urn:sessionId>"));
        assert!(parse_tree(env.as_bytes()).is_some(), "well-formed");
    }
}

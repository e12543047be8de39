//! SOAP on the partner endpoint: login (`POST /services/Soap/u/NN.N`), the way simple-salesforce,
//! the Data Loader and many older tools authenticate.
//!
//! The request is a SOAP 1.1 envelope with `<login><username/><password/></login>` in the
//! `urn:partner.soap.sforce.com` namespace (any prefixes); the password may have the security
//! token appended. Success is the partner `loginResponse`; bad credentials are the
//! `sf:INVALID_LOGIN` fault with HTTP 500, as Salesforce answers. Besides `login`, the partner
//! `undelete()` call is served (see [`super::soap_undelete`]); other operations get the SOAP
//! client fault Salesforce gives an unknown operation.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::oauth::identity::UserProfile;
use super::oauth::{password_matches, username_matches};
use super::{AppState, MAX_VERSION, MIN_VERSION};

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const PARTNER_NS: &str = "urn:partner.soap.sforce.com";
pub const PARTNER_FAULT_NS: &str = "urn:fault.partner.soap.sforce.com";
const INVALID_LOGIN_MESSAGE: &str = "Invalid username, password, security token; or user locked out.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/Soap/u/{version}", post(soap_partner))
        .route("/services/Soap/u/{version}/{org_id}", post(soap_partner_with_org))
}

/// What the envelope asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapRequest {
    Login {
        username: String,
        password: String,
    },
    /// `undelete(ID[] ids)`, with the `SessionHeader`'s `sessionId` and the
    /// `AllOrNoneHeader`'s `allOrNone`.
    Undelete {
        session_id: Option<String>,
        all_or_none: bool,
        ids: Vec<String>,
    },
    /// Any other operation, by namespace and local name.
    Other {
        namespace: String,
        operation: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapParseError {
    #[error("{0}")]
    Xml(String),
    #[error("Missing SOAP Body element")]
    NoBody,
}

/// Which text of the envelope an element carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    Username,
    Password,
    SessionId,
    AllOrNone,
    Id,
}

/// The text the envelope carries, gathered while parsing.
#[derive(Debug, Default)]
struct Texts {
    username: String,
    password: String,
    session_id: Option<String>,
    all_or_none: String,
    ids: Vec<String>,
}

impl Texts {
    fn push(&mut self, capture: Capture, text: &str) {
        match capture {
            Capture::Username => self.username.push_str(text),
            Capture::Password => self.password.push_str(text),
            Capture::SessionId => self.session_id.get_or_insert_with(String::new).push_str(text),
            Capture::AllOrNone => self.all_or_none.push_str(text),
            Capture::Id => {
                if let Some(last) = self.ids.last_mut() {
                    last.push_str(text);
                }
            }
        }
    }
}

/// What an element at `path` (below the envelope) named `local` carries, if anything.
/// `operation` is the body's first element once seen.
fn capture_for(path: &[(String, String)], local: &str, operation: Option<&(String, String)>) -> Option<Capture> {
    if path.len() != 3 {
        return None;
    }
    let (section, parent) = (&path[1], &path[2].1);
    let in_header = section.0 == SOAP_ENV_NS && section.1 == "Header";
    let in_body = section.0 == SOAP_ENV_NS && section.1 == "Body";
    let op = operation.filter(|(n, _)| n == PARTNER_NS).map(|(_, l)| l.as_str());
    match (in_header, in_body, parent.as_str(), local, op) {
        (true, _, "SessionHeader", "sessionId", _) => Some(Capture::SessionId),
        (true, _, "AllOrNoneHeader", "allOrNone", _) => Some(Capture::AllOrNone),
        (_, true, "login", "username", Some("login")) => Some(Capture::Username),
        (_, true, "login", "password", Some("login")) => Some(Capture::Password),
        (_, true, "undelete", "ids", Some("undelete")) => Some(Capture::Id),
        _ => None,
    }
}

/// Parses a SOAP 1.1 envelope far enough to know the operation, its arguments and the
/// session and all-or-none headers. Operations are recognised in the partner namespace only
/// (any prefixes); their child elements and headers by local name.
pub fn parse_request(xml: &str) -> Result<SoapRequest, SoapParseError> {
    let mut reader = NsReader::from_str(xml);
    let xml_err = |e: quick_xml::Error| SoapParseError::Xml(e.to_string());
    // Element path below the root, as (namespace, local name).
    let mut path: Vec<(String, String)> = Vec::new();
    let mut operation: Option<(String, String)> = None;
    let mut capture: Option<Capture> = None;
    let mut texts = Texts::default();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_err)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let namespace = match ns {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    _ => String::new(),
                };
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let in_body = path.len() == 2 && path[1].0 == SOAP_ENV_NS && path[1].1 == "Body";
                if in_body && operation.is_none() {
                    operation = Some((namespace.clone(), local.clone()));
                }
                capture = capture_for(&path, &local, operation.as_ref());
                if capture == Some(Capture::Id) {
                    texts.ids.push(String::new());
                }
                if matches!(event, Event::Start(_)) {
                    path.push((namespace, local));
                } else {
                    capture = None;
                }
            }
            Event::End(_) => {
                path.pop();
                capture = None;
            }
            Event::Text(t) => {
                if let Some(c) = capture {
                    texts.push(c, &t.unescape().map_err(xml_err)?);
                }
            }
            Event::CData(c) => {
                if let Some(cap) = capture {
                    texts.push(cap, &String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match operation {
        Some((n, l)) if n == PARTNER_NS && l == "login" => {
            Ok(SoapRequest::Login { username: texts.username.trim().to_owned(), password: texts.password })
        }
        Some((n, l)) if n == PARTNER_NS && l == "undelete" => Ok(SoapRequest::Undelete {
            session_id: texts.session_id.map(|s| s.trim().to_owned()),
            all_or_none: texts.all_or_none.trim().eq_ignore_ascii_case("true") || texts.all_or_none.trim() == "1",
            ids: texts.ids.into_iter().map(|s| s.trim().to_owned()).collect(),
        }),
        Some((namespace, operation)) => Ok(SoapRequest::Other { namespace, operation }),
        None => Err(SoapParseError::NoBody),
    }
}

async fn soap_partner(State(state): State<AppState>, Path(version): Path<String>, body: Bytes) -> Response {
    handle(&state, &version, &body)
}

async fn soap_partner_with_org(
    State(state): State<AppState>,
    Path((version, _org)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    handle(&state, &version, &body)
}

fn handle(state: &AppState, version: &str, body: &[u8]) -> Response {
    let Some(major) = version.strip_suffix(".0").and_then(|m| m.parse::<u32>().ok()) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], "Not Found").into_response();
    };
    if !(MIN_VERSION..=MAX_VERSION).contains(&major) {
        return sf_fault("UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL", "UnexpectedErrorFault");
    }
    let request = match std::str::from_utf8(body).map_err(|e| SoapParseError::Xml(e.to_string())).and_then(parse_request) {
        Ok(r) => r,
        Err(e) => return client_fault(&e.to_string()),
    };
    match request {
        SoapRequest::Login { username, password } => {
            if username_matches(state, &username) && password_matches(state, &password) {
                login_response(state, &format!("{major}.0"))
            } else {
                tracing::debug!("SOAP login refused");
                sf_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE, "LoginFault")
            }
        }
        SoapRequest::Undelete { session_id, all_or_none, ids } => {
            super::soap_undelete::undelete(state, session_id.as_deref(), all_or_none, &ids)
        }
        SoapRequest::Other { namespace, operation } => client_fault(&format!(
            "No operation available for request {{{namespace}}}{operation}, please check the WSDL for the service."
        )),
    }
}

/// Appends `<name>value</name>` with the value escaped.
pub(super) fn element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(value));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

pub(super) fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")], body).into_response()
}

fn login_response(state: &AppState, version: &str) -> Response {
    let p = UserProfile::of(state);
    let session_id = state.auth.issue(p.user_id, "SOAP", state.now_millis());
    let base = state.base_url();
    let org15 = p.org_id.short();
    let profile_id = tidemark_core::SfId::from_parts("00e", &state.org.read().instance, 1);
    let seconds_valid = state.config.token_lifetime.num_seconds().to_string();
    let mut out = String::with_capacity(2048);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns="{PARTNER_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#
    ));
    out.push_str("<soapenv:Body><loginResponse><result>");
    element(&mut out, "metadataServerUrl", &format!("{base}/services/Soap/m/{version}/{org15}"));
    element(&mut out, "passwordExpired", "false");
    element(&mut out, "sandbox", "false");
    element(&mut out, "serverUrl", &format!("{base}/services/Soap/u/{version}/{org15}"));
    element(&mut out, "sessionId", &session_id);
    element(&mut out, "userId", p.user_id.as_str());
    out.push_str("<userInfo>");
    let full_name = p.display_name();
    let fields: [(&str, Option<&str>); 24] = [
        ("accessibilityMode", Some("false")),
        ("chatterExternal", Some("false")),
        ("currencySymbol", Some("$")),
        ("orgAttachmentFileSizeLimit", Some("5242880")),
        ("orgDefaultCurrencyIsoCode", Some("USD")),
        ("orgDefaultCurrencyLocale", Some("en_US")),
        ("orgDisallowHtmlAttachments", Some("false")),
        ("orgHasPersonAccounts", Some("false")),
        ("organizationId", Some(p.org_id.as_str())),
        ("organizationMultiCurrency", Some("false")),
        ("organizationName", Some("Tidemark Simulated Org")),
        ("profileId", Some(profile_id.as_str())),
        ("roleId", None),
        ("sessionSecondsValid", Some(&seconds_valid)),
        ("userDefaultCurrencyIsoCode", None),
        ("userEmail", Some(&p.email)),
        ("userFullName", Some(&full_name)),
        ("userId", Some(p.user_id.as_str())),
        ("userLanguage", Some(p.locale)),
        ("userLocale", Some(p.locale)),
        ("userName", Some(&p.username)),
        ("userTimeZone", Some(p.time_zone)),
        ("userType", Some("Standard")),
        ("userUiSkin", Some("Theme3")),
    ];
    for (name, value) in fields {
        match value {
            Some(v) => element(&mut out, name, v),
            None => out.push_str(&format!(r#"<{name} xsi:nil="true"/>"#)),
        }
    }
    out.push_str("</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>");
    tracing::debug!(user = %p.user_id, "SOAP login");
    xml_response(StatusCode::OK, out)
}

/// An `sf:` API fault (HTTP 500) with its typed detail element, e.g. `LoginFault`.
pub(super) fn sf_fault(code: &str, message: &str, fault_type: &str) -> Response {
    let mut out = String::with_capacity(768);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:sf="{PARTNER_FAULT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#
    ));
    out.push_str("<soapenv:Body><soapenv:Fault>");
    element(&mut out, "faultcode", &format!("sf:{code}"));
    element(&mut out, "faultstring", &format!("{code}: {message}"));
    out.push_str(&format!(r#"<detail><sf:{fault_type} xsi:type="sf:{fault_type}">"#));
    element(&mut out, "sf:exceptionCode", code);
    element(&mut out, "sf:exceptionMessage", message);
    out.push_str(&format!("</sf:{fault_type}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"));
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, out)
}

/// A `soapenv:Client` fault: the request itself is not understood.
fn client_fault(message: &str) -> Response {
    let mut out = String::with_capacity(512);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">"#));
    out.push_str("<soapenv:Body><soapenv:Fault>");
    element(&mut out, "faultcode", "soapenv:Client");
    element(&mut out, "faultstring", message);
    out.push_str("</soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_login_with_any_prefixes_and_escapes() {
        let xml = r#"<?xml version="1.0" encoding="utf-8" ?>
        <env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
          <env:Header><urn:CallOptions><urn:client>RestForce</urn:client></urn:CallOptions></env:Header>
          <env:Body>
            <n1:login xmlns:n1="urn:partner.soap.sforce.com">
              <n1:username>a&amp;b@example.com</n1:username>
              <n1:password>p&lt;w<![CDATA[TOKEN]]></n1:password>
            </n1:login>
          </env:Body>
        </env:Envelope>"#;
        assert_eq!(
            parse_request(xml).unwrap(),
            SoapRequest::Login { username: "a&b@example.com".into(), password: "p<wTOKEN".into() }
        );
    }

    #[test]
    fn parses_undelete_with_its_headers() {
        let xml = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/">
          <se:Header>
            <SessionHeader xmlns="urn:partner.soap.sforce.com"><sessionId> 00D!abc </sessionId></SessionHeader>
            <p:AllOrNoneHeader xmlns:p="urn:partner.soap.sforce.com"><p:allOrNone>true</p:allOrNone></p:AllOrNoneHeader>
          </se:Header>
          <se:Body><p:undelete xmlns:p="urn:partner.soap.sforce.com"><p:ids>001A</p:ids><p:ids> 003B </p:ids></p:undelete></se:Body>
        </se:Envelope>"#;
        assert_eq!(
            parse_request(xml).unwrap(),
            SoapRequest::Undelete {
                session_id: Some("00D!abc".into()),
                all_or_none: true,
                ids: vec!["001A".into(), "003B".into()]
            }
        );
        let bare = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><undelete xmlns="urn:partner.soap.sforce.com"/></s:Body></s:Envelope>"#;
        assert_eq!(parse_request(bare).unwrap(), SoapRequest::Undelete { session_id: None, all_or_none: false, ids: vec![] });
    }

    #[test]
    fn other_operations_and_broken_envelopes() {
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><query xmlns="urn:partner.soap.sforce.com"/></s:Body></s:Envelope>"#;
        assert_eq!(parse_request(xml).unwrap(), SoapRequest::Other { namespace: PARTNER_NS.into(), operation: "query".into() });
        // `login` outside the partner namespace is not the partner login.
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><login><username>u</username></login></s:Body></s:Envelope>"#;
        assert!(matches!(parse_request(xml).unwrap(), SoapRequest::Other { .. }));
        assert_eq!(parse_request("<a/>"), Err(SoapParseError::NoBody));
        assert!(matches!(parse_request("<a><b></a>"), Err(SoapParseError::Xml(_))));
    }

    #[test]
    fn element_escapes_values() {
        let mut s = String::new();
        element(&mut s, "x", "<&>");
        assert_eq!(s, "<x>&lt;&amp;&gt;</x>");
    }
}

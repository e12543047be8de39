//! SOQL tokens. Keywords are not distinguished here: SOQL keywords are case-insensitive and
//! several are legal field names (e.g. `Type`), so the parser decides from context.

use super::SoqlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokKind {
    Ident,
    /// A quoted string, unescaped.
    Str(String),
    Number,
    /// `2024-01-31`
    Date,
    /// `2024-01-31T10:00:00Z`, `…00.123+01:00`
    DateTime,
    Comma,
    LParen,
    RParen,
    Dot,
    Colon,
    Op(CmpOp),
    Eof,
}

/// A token with its byte span in the query text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }

    /// Whether this is the identifier `kw` (case-insensitive).
    pub fn is_kw(&self, src: &str, kw: &str) -> bool {
        self.kind == TokKind::Ident && self.text(src).eq_ignore_ascii_case(kw)
    }

    /// How Salesforce names the token in `unexpected token: '…'`.
    pub fn display(&self, src: &str) -> String {
        match self.kind {
            TokKind::Eof => "<EOF>".to_owned(),
            _ => self.text(src).to_owned(),
        }
    }
}

/// Splits `src` into tokens, ending with `Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b',' => {
                i += 1;
                TokKind::Comma
            }
            b'(' => {
                i += 1;
                TokKind::LParen
            }
            b')' => {
                i += 1;
                TokKind::RParen
            }
            b'.' => {
                i += 1;
                TokKind::Dot
            }
            b':' => {
                i += 1;
                TokKind::Colon
            }
            b'=' => {
                i += 1;
                TokKind::Op(CmpOp::Eq)
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                TokKind::Op(CmpOp::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => {
                    i += 2;
                    TokKind::Op(CmpOp::Ne)
                }
                Some(b'=') => {
                    i += 2;
                    TokKind::Op(CmpOp::Le)
                }
                _ => {
                    i += 1;
                    TokKind::Op(CmpOp::Lt)
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    TokKind::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    TokKind::Op(CmpOp::Gt)
                }
            }
            b'\'' => {
                let (s, next) = lex_string(src, i)?;
                i = next;
                TokKind::Str(s)
            }
            b'0'..=b'9' | b'-' | b'+' if c.is_ascii_digit() || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                if let Some((kind, next)) = lex_date_or_datetime(bytes, i) {
                    i = next;
                    kind
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                        i += 1;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    TokKind::Number
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                TokKind::Ident
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                let (row, col) = position(src, i);
                return Err(SoqlError::malformed(format!("line {row}:{} no viable alternative at character '{ch}'", col - 1)));
            }
        };
        out.push(Token { kind, start, end: i });
    }
    out.push(Token { kind: TokKind::Eof, start: src.len(), end: src.len() });
    Ok(out)
}

/// A quoted string starting at `start` (the opening quote). Returns the unescaped text and the
/// index after the closing quote.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), SoqlError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        match ch {
            '\'' => return Ok((out, start + 1 + off + 1)),
            '\\' => {
                let Some((_, esc)) = chars.next() else { break };
                match esc {
                    '\'' | '"' | '\\' => out.push(esc),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    // LIKE wildcards stay escaped; the LIKE matcher interprets them.
                    '%' | '_' => {
                        out.push('\\');
                        out.push(esc);
                    }
                    other => {
                        let literal: String = src[start..].chars().take_while(|c| *c != ' ').collect();
                        return Err(SoqlError::malformed(format!(
                            "Invalid string literal {literal}. Illegal character sequence '\\{other}' in string literal."
                        )));
                    }
                }
            }
            other => out.push(other),
        }
    }
    let (row, col) = position(src, start);
    Err(SoqlError::malformed(format!("line {row}:{} mismatched character '<EOF>' expecting '''", col - 1)))
}

/// `yyyy-MM-dd` optionally followed by `Thh:mm:ss[.fff](Z|±hh:mm|±hhmm)`.
fn lex_date_or_datetime(b: &[u8], i: usize) -> Option<(TokKind, usize)> {
    let digits = |from: usize, n: usize| b.get(from..from + n).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !(digits(i, 4) && b.get(i + 4) == Some(&b'-') && digits(i + 5, 2) && b.get(i + 7) == Some(&b'-') && digits(i + 8, 2)) {
        return None;
    }
    let date_end = i + 10;
    if b.get(date_end) != Some(&b'T') {
        return Some((TokKind::Date, date_end));
    }
    let t = date_end + 1;
    if !(digits(t, 2) && b.get(t + 2) == Some(&b':') && digits(t + 3, 2) && b.get(t + 5) == Some(&b':') && digits(t + 6, 2)) {
        return None;
    }
    let mut j = t + 8;
    if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
    }
    match b.get(j) {
        Some(b'Z') | Some(b'z') => Some((TokKind::DateTime, j + 1)),
        Some(b'+') | Some(b'-') if digits(j + 1, 2) => {
            if b.get(j + 3) == Some(&b':') && digits(j + 4, 2) {
                Some((TokKind::DateTime, j + 6))
            } else if digits(j + 3, 2) {
                Some((TokKind::DateTime, j + 5))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// 1-based row and column (in characters) of byte offset `at`.
pub fn position(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at.min(src.len())];
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
    (row, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokKind> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokenizes_operators_literals_and_escapes() {
        assert_eq!(
            kinds("a<>1 b<=-2.5 c!='x\\'y\\\\' d>=2024-01-31"),
            vec![
                TokKind::Ident,
                TokKind::Op(CmpOp::Ne),
                TokKind::Number,
                TokKind::Ident,
                TokKind::Op(CmpOp::Le),
                TokKind::Number,
                TokKind::Ident,
                TokKind::Op(CmpOp::Ne),
                TokKind::Str("x'y\\".to_owned()),
                TokKind::Ident,
                TokKind::Op(CmpOp::Ge),
                TokKind::Date,
                TokKind::Eof,
            ]
        );
        let toks = tokenize("x > 2024-01-31T10:00:00.123+05:30 AND y < 2024-01-31T10:00:00Z").unwrap();
        assert_eq!(toks[2].kind, TokKind::DateTime);
        assert_eq!(toks[2].text("x > 2024-01-31T10:00:00.123+05:30"), "2024-01-31T10:00:00.123+05:30");
        assert_eq!(toks[6].kind, TokKind::DateTime);
        assert_eq!(kinds("LAST_N_DAYS:30")[..3], [TokKind::Ident, TokKind::Colon, TokKind::Number]);
    }

    #[test]
    fn rejects_bad_strings_and_characters() {
        assert_eq!(tokenize("'abc").unwrap_err().error_code, "MALFORMED_QUERY");
        assert!(tokenize("'a\\qb'").unwrap_err().message.contains("Illegal character sequence '\\q'"));
        assert!(tokenize("a # b").is_err());
        assert_eq!(position("ab\ncd", 4), (2, 2));
    }
}

//! The RFC 4180 tokenizer: splits the bytes into fields and records, and keeps what the `csv`
//! crate loses — whether a field was quoted, which is what tells `""` (empty string) from an
//! empty field (NULL).

use memchr::{memchr, memchr2, memchr3};

/// One field's text. Quoted text has its quoting removed and escapes resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field<'a> {
    Unquoted(&'a [u8]),
    Quoted(&'a [u8]),
}

/// What ended a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// A delimiter: the record has another field.
    Delimiter,
    /// A line end or the end of the file: the record is complete.
    Record,
}

/// Malformed quoting; the caller adds the line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenError {
    QuoteInUnquoted,
    TextAfterQuote,
    UnclosedQuote,
}

impl TokenError {
    pub(super) fn message(self) -> &'static str {
        match self {
            TokenError::QuoteInUnquoted => {
                "a quote inside an unquoted field (quote the whole field and escape the quotes inside it)"
            }
            TokenError::TextAfterQuote => "text after a closing quote (expected the delimiter or the end of the line)",
            TokenError::UnclosedQuote => "a quoted field is not closed before the end of the file",
        }
    }
}

/// The single-byte characters of a dialect.
#[derive(Debug, Clone, Copy)]
pub(super) struct Syntax {
    pub delimiter: u8,
    pub quote: u8,
    /// `None`: a doubled quote stands for a quote.
    pub escape: Option<u8>,
}

pub(super) struct Tokenizer<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The 1-based physical line `pos` is on.
    line: usize,
    syntax: Syntax,
    /// Holds a quoted field's text when escapes made it differ from the file's bytes.
    unescaped: Vec<u8>,
}

impl<'a> Tokenizer<'a> {
    pub(super) fn new(bytes: &'a [u8], syntax: Syntax) -> Self {
        Tokenizer { bytes, pos: 0, line: 1, syntax, unescaped: Vec::new() }
    }

    pub(super) fn line(&self) -> usize {
        self.line
    }

    pub(super) fn offset(&self) -> usize {
        self.pos
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Whether no record is left: only line ends remain, which writers leave behind as an empty
    /// last line (so a trailing empty line is never a record, even of a one-column file).
    pub(super) fn at_end(&self) -> bool {
        self.bytes[self.pos..].iter().all(|&b| b == b'\n' || b == b'\r')
    }

    /// The next field and what ended it. Call only while [`Tokenizer::at_end`] is false or a
    /// record is under way.
    pub(super) fn next_field(&mut self) -> Result<(Field<'_>, End), TokenError> {
        if self.bytes.get(self.pos) == Some(&self.syntax.quote) { self.quoted() } else { self.unquoted() }
    }

    fn unquoted(&mut self) -> Result<(Field<'_>, End), TokenError> {
        let Syntax { delimiter, quote, .. } = self.syntax;
        let rest = &self.bytes[self.pos..];
        let Some(found) = memchr3(delimiter, b'\n', quote, rest) else {
            self.pos = self.bytes.len();
            return Ok((Field::Unquoted(without_cr(rest)), End::Record));
        };
        self.pos += found + 1;
        let text = &rest[..found];
        match rest[found] {
            b if b == delimiter => Ok((Field::Unquoted(text), End::Delimiter)),
            b'\n' => {
                self.line += 1;
                Ok((Field::Unquoted(without_cr(text)), End::Record))
            }
            _ => Err(TokenError::QuoteInUnquoted),
        }
    }

    fn quoted(&mut self) -> Result<(Field<'_>, End), TokenError> {
        let start = self.pos + 1;
        let (close, escaped) = self.find_closing_quote(start)?;
        self.line += memchr::memchr_iter(b'\n', &self.bytes[start..close]).count();
        self.pos = close + 1;
        let end = self.after_closing_quote()?;
        let text = if escaped { &self.unescaped[..] } else { &self.bytes[start..close] };
        Ok((Field::Quoted(text), end))
    }

    /// The closing quote's offset, and whether escapes were resolved into `unescaped` (only then
    /// is the text copied: most quoted fields are quoted for a delimiter or newline, not a quote).
    fn find_closing_quote(&mut self, start: usize) -> Result<(usize, bool), TokenError> {
        let Syntax { quote, escape, .. } = self.syntax;
        let bytes = self.bytes;
        let (mut scan, mut copied_to, mut escaped) = (start, start, false);
        loop {
            let rest = &bytes[scan..];
            let found = match escape {
                None => memchr(quote, rest),
                Some(escape) => memchr2(quote, escape, rest),
            };
            let at = scan + found.ok_or(TokenError::UnclosedQuote)?;
            let next = bytes.get(at + 1).copied();
            let escapes_next = match escape {
                None => next == Some(quote),
                Some(escape) => bytes[at] == escape && (next == Some(quote) || next == Some(escape)),
            };
            if escapes_next {
                if !escaped {
                    self.unescaped.clear();
                    escaped = true;
                }
                // Keep the escaped character (the second byte) as the start of the next run.
                self.unescaped.extend_from_slice(&bytes[copied_to..at]);
                copied_to = at + 1;
                scan = at + 2;
            } else if bytes[at] == quote {
                if escaped {
                    self.unescaped.extend_from_slice(&bytes[copied_to..at]);
                }
                return Ok((at, escaped));
            } else {
                // An escape character before anything else is itself (as in PostgreSQL's CSV).
                scan = at + 1;
            }
        }
    }

    fn after_closing_quote(&mut self) -> Result<End, TokenError> {
        let rest = &self.bytes[self.pos..];
        let (consumed, end) = match rest {
            [] | [b'\r'] => (rest.len(), End::Record),
            [b'\n', ..] | [b'\r', b'\n', ..] => (if rest[0] == b'\r' { 2 } else { 1 }, End::Record),
            [b, ..] if *b == self.syntax.delimiter => (1, End::Delimiter),
            _ => return Err(TokenError::TextAfterQuote),
        };
        if end == End::Record && consumed > 0 && rest[consumed - 1] == b'\n' {
            self.line += 1;
        }
        self.pos += consumed;
        Ok(end)
    }
}

/// A field's text without the CR of a CRLF (or of a last line's lone CR).
fn without_cr(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r").unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMA: Syntax = Syntax { delimiter: b',', quote: b'"', escape: None };

    /// A record's start line and its fields as (text, quoted) pairs.
    type Record = (usize, Vec<(String, bool)>);

    fn records(input: &str, syntax: Syntax) -> Result<Vec<Record>, TokenError> {
        let mut tokenizer = Tokenizer::new(input.as_bytes(), syntax);
        let mut out = Vec::new();
        while !tokenizer.at_end() {
            let line = tokenizer.line();
            let mut fields = Vec::new();
            loop {
                let (field, end) = tokenizer.next_field()?;
                fields.push(match field {
                    Field::Unquoted(t) => (String::from_utf8(t.to_vec()).unwrap(), false),
                    Field::Quoted(t) => (String::from_utf8(t.to_vec()).unwrap(), true),
                });
                if end == End::Record {
                    break;
                }
            }
            out.push((line, fields));
        }
        Ok(out)
    }

    fn texts(input: &str, syntax: Syntax) -> Vec<Vec<String>> {
        records(input, syntax).unwrap().into_iter().map(|(_, r)| r.into_iter().map(|(t, _)| t).collect()).collect()
    }

    #[test]
    fn splits_records_and_tracks_lines() {
        let parsed = records("a,b\r\n\"x\ny\",\"\"\n,\"q\"\"\"\r\nlast,", COMMA).unwrap();
        assert_eq!(parsed.iter().map(|(line, _)| *line).collect::<Vec<_>>(), vec![1, 2, 4, 5]);
        assert_eq!(parsed[1].1, vec![("x\ny".to_string(), true), (String::new(), true)]);
        assert_eq!(parsed[2].1, vec![(String::new(), false), ("q\"".to_string(), true)]);
        assert_eq!(parsed[3].1, vec![("last".to_string(), false), (String::new(), false)]);
    }

    #[test]
    fn doubled_quotes_and_escapes() {
        assert_eq!(texts("\"a\"\"b\"\"\",\"\"\"\"\n", COMMA), vec![vec!["a\"b\"", "\""]]);
        let backslash = Syntax { escape: Some(b'\\'), ..COMMA };
        assert_eq!(texts(r#""say \"hi\"","a\\b","c:\temp",\N"#, backslash), vec![vec![r#"say "hi""#, r"a\b", r"c:\temp", r"\N"]]);
        assert_eq!(records("\"a\"\"b\"\n", backslash), Err(TokenError::TextAfterQuote));
    }

    #[test]
    fn trailing_line_ends_are_not_records() {
        assert_eq!(texts("a\n\n\r\n", COMMA), vec![vec!["a"]]);
        assert_eq!(texts("a\r", COMMA), vec![vec!["a"]]);
        assert_eq!(texts("a\n\nb\n", COMMA), vec![vec!["a"], vec![""], vec!["b"]]);
    }

    #[test]
    fn malformed_quoting() {
        assert_eq!(records("ab\"c\n", COMMA), Err(TokenError::QuoteInUnquoted));
        assert_eq!(records("\"ab\"c\n", COMMA), Err(TokenError::TextAfterQuote));
        assert_eq!(records("\"ab\n", COMMA), Err(TokenError::UnclosedQuote));
        assert_eq!(records("\"ab\\\"", Syntax { escape: Some(b'\\'), ..COMMA }), Err(TokenError::UnclosedQuote));
    }
}

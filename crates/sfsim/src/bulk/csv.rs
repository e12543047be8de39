//! Bulk CSV: reading uploaded job data in any of the six delimiters and two line endings, and
//! writing result values (always quoted, `"` doubled).

use super::{CsvFormat, LineEnding};

/// Uploaded CSV data: the header row and the data rows, as uploaded (values unescaped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Why uploaded data cannot be read. The display text is the job's `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {0}")]
    LineEnding(&'static str),
    #[error("ClientInputError : Unexpected end of data inside a quoted value (row {0})")]
    UnterminatedQuote(usize),
    #[error("InvalidBatch : No header row in the uploaded data")]
    NoHeader,
}

/// Parses `data` in `fmt`. A row terminator that does not match the job's line ending fails the
/// whole upload, as Salesforce does; line breaks inside quoted values are kept as they are.
pub fn parse(data: &str, fmt: CsvFormat) -> Result<CsvTable, CsvError> {
    let b = data.as_bytes();
    let delim = fmt.delimiter.byte();
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut i, mut start) = (0usize, 0usize);
    let mut in_quotes = false;
    let mut at_field_start = true;
    while i < b.len() {
        let c = b[i];
        if in_quotes {
            if c == b'"' {
                if b.get(i + 1) == Some(&b'"') {
                    field.push_str(&data[start..=i]);
                    i += 2;
                } else {
                    field.push_str(&data[start..i]);
                    in_quotes = false;
                    i += 1;
                }
                start = i;
                continue;
            }
            i += 1;
            continue;
        }
        if c == b'"' && at_field_start {
            in_quotes = true;
            at_field_start = false;
            i += 1;
            start = i;
            continue;
        }
        if c == delim {
            field.push_str(&data[start..i]);
            row.push(std::mem::take(&mut field));
            i += 1;
            start = i;
            at_field_start = true;
            continue;
        }
        if c == b'\n' {
            let cr = i > start && b[i - 1] == b'\r';
            let end = match (fmt.line_ending, cr) {
                (LineEnding::Lf, true) => return Err(CsvError::LineEnding("LF")),
                (LineEnding::Crlf, false) => return Err(CsvError::LineEnding("CRLF")),
                (LineEnding::Crlf, true) => i - 1,
                (LineEnding::Lf, false) => i,
            };
            field.push_str(&data[start..end]);
            row.push(std::mem::take(&mut field));
            push_record(&mut records, std::mem::take(&mut row));
            i += 1;
            start = i;
            at_field_start = true;
            continue;
        }
        at_field_start = false;
        i += 1;
    }
    if in_quotes {
        return Err(CsvError::UnterminatedQuote(records.len()));
    }
    if start < b.len() || !row.is_empty() || !field.is_empty() {
        field.push_str(&data[start..]);
        row.push(field);
        push_record(&mut records, row);
    }
    let mut it = records.into_iter();
    let header = it.next().ok_or(CsvError::NoHeader)?;
    Ok(CsvTable { header, rows: it.collect() })
}

/// Blank lines carry no record.
fn push_record(records: &mut Vec<Vec<String>>, row: Vec<String>) {
    if !(row.len() == 1 && row[0].is_empty()) {
        records.push(row);
    }
}

/// Appends `value` quoted, with embedded quotes doubled.
pub fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for (i, part) in value.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

/// Rewrites comma-delimited, LF-terminated CSV (as `SoqlQuery::write_csv_row` writes it) into
/// `fmt`, leaving quoted values untouched.
pub fn reformat(src: &str, fmt: CsvFormat, out: &mut String) {
    let delim = fmt.delimiter.byte() as char;
    let eol = fmt.line_ending.as_str();
    let b = src.as_bytes();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                out.push_str(&src[start..i]);
                out.push(delim);
                start = i + 1;
            }
            b'\n' if !in_quotes => {
                out.push_str(&src[start..i]);
                out.push_str(eol);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push_str(&src[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::ColumnDelimiter;

    fn fmt(d: ColumnDelimiter, l: LineEnding) -> CsvFormat {
        CsvFormat { delimiter: d, line_ending: l }
    }

    #[test]
    fn reads_the_documented_semicolon_sample() {
        let data = "FirstName;LastName;Title;Birthdate;Description\nTom;Jones;Senior Director;1940-06-07Z;\"Self-described as \"\"the top\"\" branding guru\"\nIan;Dury;Chief Imagineer;1965-12-11Z;\"Expert in fuzzy logic design; Knowledgeable in AI\nInfluential in technology purchases.\"\n";
        let t = parse(data, fmt(ColumnDelimiter::Semicolon, LineEnding::Lf)).unwrap();
        assert_eq!(t.header, ["FirstName", "LastName", "Title", "Birthdate", "Description"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][4], "Self-described as \"the top\" branding guru");
        assert_eq!(t.rows[1][4], "Expert in fuzzy logic design; Knowledgeable in AI\nInfluential in technology purchases.");
    }

    #[test]
    fn every_delimiter_and_line_ending() {
        for d in [
            ColumnDelimiter::Backquote,
            ColumnDelimiter::Caret,
            ColumnDelimiter::Comma,
            ColumnDelimiter::Pipe,
            ColumnDelimiter::Semicolon,
            ColumnDelimiter::Tab,
        ] {
            let s = d.byte() as char;
            for (l, eol) in [(LineEnding::Lf, "\n"), (LineEnding::Crlf, "\r\n")] {
                let data = format!("a{s}b{eol}1{s}\"x{s}y\"{eol}{s}last");
                let t = parse(&data, fmt(d, l)).unwrap();
                assert_eq!(t.header, ["a", "b"]);
                assert_eq!(t.rows, vec![vec!["1".to_owned(), format!("x{s}y")], vec![String::new(), "last".to_owned()]]);
            }
        }
    }

    #[test]
    fn a_foreign_line_ending_fails_the_upload() {
        let lf = fmt(ColumnDelimiter::Comma, LineEnding::Lf);
        let crlf = fmt(ColumnDelimiter::Comma, LineEnding::Crlf);
        assert_eq!(parse("a,b\r\n1,2\r\n", lf), Err(CsvError::LineEnding("LF")));
        assert_eq!(parse("a,b\n1,2\n", crlf), Err(CsvError::LineEnding("CRLF")));
        assert_eq!(
            CsvError::LineEnding("LF").to_string(),
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
        );
        assert_eq!(parse("a\n\"open", lf), Err(CsvError::UnterminatedQuote(1)));
        assert_eq!(parse("", lf), Err(CsvError::NoHeader));
    }

    #[test]
    fn quoting_and_reformatting() {
        let mut out = String::new();
        push_quoted(&mut out, "say \"hi\"");
        assert_eq!(out, "\"say \"\"hi\"\"\"");
        let src = "\"Id\",\"Name\"\n\"1\",\"a,\"\",\"\"b\nc\"\n";
        let mut out = String::new();
        reformat(src, fmt(ColumnDelimiter::Caret, LineEnding::Crlf), &mut out);
        assert_eq!(out, "\"Id\"^\"Name\"\r\n\"1\"^\"a,\"\",\"\"b\nc\"\r\n");
    }
}

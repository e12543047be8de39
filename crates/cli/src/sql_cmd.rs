//! `tidemark sql`: one query (or a script) from the command line, or an interactive shell.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use tidemark_lake::LakeLocation;
use tidemark_query::catalog::parse_instant;
use tidemark_query::{Format, QueryError, QuerySession, ReadOptions, TableVersion};

use crate::shell::{Flow, command, is_quit, run_command};

pub struct SqlArgs {
    pub query: Option<String>,
    pub file: Option<PathBuf>,
    pub as_of: Option<String>,
    pub table_version: Option<u64>,
    pub table_timestamp: Option<String>,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub timing: bool,
}

/// Read options from the flags (validated before the lake is touched).
pub fn read_options(
    as_of: Option<&str>,
    table_version: Option<u64>,
    table_timestamp: Option<&str>,
) -> anyhow::Result<ReadOptions> {
    let table_version = match (table_version, table_timestamp) {
        (Some(_), Some(_)) => bail!("--table-version and --table-timestamp exclude each other"),
        (Some(v), None) => Some(TableVersion::Version(v)),
        (None, Some(t)) => Some(TableVersion::Timestamp(parse_instant(t).context("--table-timestamp")?)),
        (None, None) => None,
    };
    Ok(ReadOptions { as_of: as_of.map(parse_instant).transpose().context("--as-of")?, table_version })
}

/// A lake to read must exist: a local folder with none of `objects/`, `sources/` and `marts/`
/// is most likely a typo.
pub fn existing_lake(lake: &LakeLocation) -> anyhow::Result<()> {
    if let Ok(path) = lake.root().to_file_path() {
        if !["objects", "sources", "marts"].iter().any(|folder| path.join(folder).is_dir()) {
            bail!(
                "no lake at {}: it has no objects/, sources/ or marts/ folder (run `tidemark sync`, `tidemark model run` or `tidemark demo` first)",
                path.display()
            );
        }
    }
    Ok(())
}

pub async fn sql(lake: LakeLocation, args: SqlArgs) -> anyhow::Result<()> {
    existing_lake(&lake)?;
    let options = read_options(args.as_of.as_deref(), args.table_version, args.table_timestamp.as_deref())?;
    if args.format == Format::Parquet && args.out.is_none() {
        bail!("--format parquet writes a file: add --out <file.parquet>");
    }
    let session = QuerySession::open(lake, options).await?;
    let script = match (&args.query, &args.file) {
        (Some(q), None) => Some(q.clone()),
        (None, Some(f)) => Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?),
        (Some(_), Some(_)) => bail!("give a query or --file, not both"),
        (None, None) if !std::io::stdin().is_terminal() => {
            Some(std::io::read_to_string(std::io::stdin()).context("reading stdin")?)
        }
        (None, None) => None,
    };
    match script {
        Some(script) => {
            run_script(&session, &script, args.format, args.out.as_ref(), args.timing).await.map_err(|e| report(e, &script))
        }
        None => crate::shell::shell(&session, args.format).await,
    }
}

/// Runs every statement and backslash command of `script`, writing each result; with
/// `timing`, each statement's time (planning, reading, writing the result) goes to standard
/// error. The whole script is parsed first, so a syntax error anywhere runs nothing; it stops
/// at the first error, or at `\q`.
pub async fn run_script(
    session: &QuerySession,
    script: &str,
    format: Format,
    out: Option<&PathBuf>,
    timing: bool,
) -> Result<(), QueryError> {
    let mut steps = Vec::new();
    for piece in pieces(script) {
        match piece {
            Piece::Command(command) => steps.push(Step::Command(command)),
            Piece::Sql(sql) => steps.extend(session.parse(&sql)?.into_iter().map(Step::Statement)),
        }
    }
    if steps.is_empty() {
        return Err(QueryError::Usage("no statement to run".into()));
    }
    // A Parquet file holds one table: a listing or a second result would corrupt it.
    let one_table = format == Format::Parquet;
    if one_table && steps.iter().any(|s| matches!(s, Step::Command(c) if !is_quit(c))) {
        return Err(QueryError::Usage(
            "--format parquet writes one result to a file: run the script's backslash commands (\\d, \\timing, \\?) without it"
                .into(),
        ));
    }
    let mut results = 0;
    let mut sink: Box<dyn Write + Send> = match out {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| QueryError::Output(format!("{}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut timing = timing;
    for step in steps {
        match step {
            Step::Command(command) => {
                if run_command(session, command, &mut timing, &mut sink).await? == Flow::Quit {
                    break;
                }
            }
            Step::Statement(statement) => {
                let started = Instant::now();
                let frame = session.execute(statement).await?;
                print_notes(session, &frame).await;
                if !frame.schema().fields().is_empty() {
                    results += 1;
                    if one_table && results > 1 {
                        return Err(QueryError::Usage(
                            "--format parquet writes one result to a file, and the script has a second: the file holds the first; run the others separately".into(),
                        ));
                    }
                }
                write_frame(frame, format, &mut sink).await?;
                if timing {
                    sink.flush().map_err(|e| QueryError::Output(e.to_string()))?;
                    eprintln!("Time: {}", elapsed(started));
                }
            }
        }
    }
    sink.flush().map_err(|e| QueryError::Output(e.to_string()))
}

enum Step<'a> {
    Command(&'a str),
    Statement(tidemark_query::Statement),
}

/// A part of a script: SQL (one or more statements) or a backslash command on its own line.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Sql(String),
    Command(&'a str),
}

/// Splits `script` at its backslash commands (recognized as the shell does). Each SQL piece
/// starts with as many blank lines as precede it, so DataFusion's error positions are the
/// script's and [`report`] can point into it.
fn pieces(script: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut sql = String::new();
    for (number, line) in script.lines().enumerate() {
        match command(&sql, line) {
            Some(command) => {
                if !sql.trim().is_empty() {
                    pieces.push(Piece::Sql(std::mem::take(&mut sql)));
                }
                sql = "\n".repeat(number + 1);
                pieces.push(Piece::Command(command));
            }
            None => {
                sql.push_str(line);
                sql.push('\n');
            }
        }
    }
    if !sql.trim().is_empty() {
        pieces.push(Piece::Sql(sql));
    }
    pieces
}

/// Runs one statement; results with columns are written, DDL (`CREATE VIEW`) prints nothing.
pub async fn write_result(
    session: &QuerySession,
    statement: tidemark_query::Statement,
    format: Format,
    sink: &mut (dyn Write + Send),
) -> Result<tidemark_query::OutputMetrics, QueryError> {
    let frame = session.execute(statement).await?;
    print_notes(session, &frame).await;
    write_frame(frame, format, sink).await
}

/// Prints the session's hints about a result on standard error (an as-of instant before an
/// object's first version, an initial sync that never completed). Failing to work one out
/// leaves it out: the result itself is right.
async fn print_notes(session: &QuerySession, frame: &tidemark_lake::datafusion::dataframe::DataFrame) {
    match session.notes(frame).await {
        Ok(notes) => notes.iter().for_each(|note| eprintln!("{note}")),
        Err(e) => tracing::debug!(error = %e, "no hints about the result"),
    }
}

async fn write_frame(
    frame: tidemark_lake::datafusion::dataframe::DataFrame,
    format: Format,
    sink: &mut (dyn Write + Send),
) -> Result<tidemark_query::OutputMetrics, QueryError> {
    if frame.schema().fields().is_empty() {
        return Ok(Default::default());
    }
    let stream = frame.execute_stream().await?;
    tidemark_query::output::write_stream(stream, format, sink).await
}

/// An error as the user should see it: the message, then the query line with a caret under
/// the position when DataFusion knows it.
pub fn report(error: QueryError, script: &str) -> anyhow::Error {
    match error.position().and_then(|(line, column)| caret(script, line, column)) {
        Some(pointer) => anyhow::anyhow!("{error}\n{pointer}"),
        None => anyhow::Error::new(error),
    }
}

fn caret(script: &str, line: u64, column: u64) -> Option<String> {
    let text = script.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let indent = " ".repeat(usize::try_from(column).ok()?.saturating_sub(1));
    Some(format!("  {text}\n  {indent}^"))
}

/// Seconds with millisecond precision, for `\timing`.
pub fn elapsed(started: Instant) -> String {
    format!("{:.3} s", started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_read_options() {
        let o = read_options(Some("2025-01-31"), Some(3), None).unwrap();
        assert_eq!(o.as_of.unwrap().to_rfc3339(), "2025-01-31T00:00:00+00:00");
        assert_eq!(o.table_version, Some(TableVersion::Version(3)));
        let e = read_options(None, Some(1), Some("2025-01-01")).unwrap_err();
        assert!(e.to_string().contains("exclude each other"));
        let e = read_options(Some("yesterday"), None, None).unwrap_err();
        assert!(format!("{e:#}").contains("--as-of"), "{e:#}");
    }

    #[test]
    fn scripts_split_at_backslash_commands_keeping_line_numbers() {
        let got = pieces("\\d\nSELECT 1;\n  \\d account\nSELECT\n  2");
        assert_eq!(
            got,
            [
                Piece::Command("\\d"),
                Piece::Sql("\nSELECT 1;\n".into()),
                Piece::Command("\\d account"),
                Piece::Sql("\n\n\nSELECT\n  2\n".into())
            ]
        );
        // Inside a statement a backslash line is the statement's.
        assert_eq!(pieces("SELECT 'a\n\\b'"), [Piece::Sql("SELECT 'a\n\\b'\n".into())]);
        assert!(pieces("  \n").is_empty());
    }

    #[test]
    fn caret_points_at_the_column() {
        assert_eq!(caret("SELECT *\nFROM acount", 2, 6).unwrap(), "  FROM acount\n       ^");
        assert!(caret("SELECT 1", 3, 1).is_none());
    }
}

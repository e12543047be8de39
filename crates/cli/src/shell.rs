//! The interactive SQL shell: line editing and history, statements across lines up to `;`,
//! and backslash commands (`\d`, `\d name`, `\timing`, `\q`), which scripts accept too.

use std::io::Write;
use std::time::Instant;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_query::types::sql_type_name;
use tidemark_query::{Format, QueryError, QuerySession};

use crate::sql_cmd::{elapsed, report, write_result};

const HELP: &str = "\
  \\d            list tables (live, _history and _scd2 per object)
  \\d NAME       describe a table's columns (with their SQL types)
  \\timing       show how long each statement took (toggle)
  \\q            quit (or Ctrl-D)
  Statements end with ';' and may span lines. Ctrl-C clears the current input.";

/// What the input loop does after a backslash command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// `line` as a backslash command, if it is one: it starts with `\` and no statement is pending,
/// i.e. `pending` (the input read since the last statement ran) is blank or ends with `;`.
/// Within a statement a backslash is the statement's (a string literal spanning lines).
pub fn command<'a>(pending: &str, line: &'a str) -> Option<&'a str> {
    let pending = pending.trim_end();
    let line = line.trim();
    (line.starts_with('\\') && (pending.is_empty() || pending.ends_with(';'))).then_some(line)
}

/// Runs one backslash command, writing what it shows to `out`; `timing` is the `\timing` switch.
/// `\q`: every other command writes something (a listing, help, the timing setting).
pub fn is_quit(command: &str) -> bool {
    matches!(command, "\\q" | "\\quit")
}

pub async fn run_command(
    session: &QuerySession,
    command: &str,
    timing: &mut bool,
    out: &mut (dyn Write + Send),
) -> Result<Flow, QueryError> {
    match command {
        c if is_quit(c) => return Ok(Flow::Quit),
        "\\?" | "\\h" | "\\help" => writeln!(out, "{HELP}").map_err(output)?,
        "\\timing" => {
            *timing = !*timing;
            writeln!(out, "Timing is {}.", if *timing { "on" } else { "off" }).map_err(output)?;
        }
        "\\d" => list_tables(session, out).map_err(output)?,
        other => match other.strip_prefix("\\d ") {
            Some(name) => describe(&session.describe(name.trim()).await?, out).map_err(output)?,
            None => return Err(QueryError::Usage(format!("unknown command {other}; \\? for help"))),
        },
    }
    Ok(Flow::Continue)
}

fn output(e: std::io::Error) -> QueryError {
    QueryError::Output(e.to_string())
}

fn history_file() -> Option<std::path::PathBuf> {
    std::env::var_os("TIDEMARK_HISTORY")
        .map(Into::into)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".tidemark_history")))
}

pub async fn shell(session: &QuerySession, format: Format) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_file();
    if let Some(h) = &history {
        // A missing history file is the first run, not an error.
        let _ = editor.load_history(h);
    }
    println!("tidemark sql: {} tables. \\? for help, \\q to quit.", session.tables().len());
    let mut buffer = String::new();
    let mut timing = false;
    loop {
        let prompt = if buffer.is_empty() { "tidemark> " } else { "      ..> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if let Some(command) = command(&buffer, &line) {
            let _ = editor.add_history_entry(command);
            match run_command(session, command, &mut timing, &mut std::io::stdout()).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Err(e) => eprintln!("error: {e}"),
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let script = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(script.trim_end());
        run(session, &script, format, timing).await;
    }
    if let Some(h) = &history {
        if let Err(e) = editor.save_history(h) {
            eprintln!("could not save the shell history to {}: {e}", h.display());
        }
    }
    Ok(())
}

async fn run(session: &QuerySession, script: &str, format: Format, timing: bool) {
    let statements = match session.parse(script) {
        Ok(s) => s,
        Err(e) => return eprintln!("error: {:#}", report(e, script)),
    };
    let mut stdout = std::io::stdout();
    for statement in statements {
        let started = Instant::now();
        if let Err(e) = write_result(session, statement, format, &mut stdout).await {
            eprintln!("error: {:#}", report(e, script));
            return;
        }
        if timing {
            println!("Time: {}", elapsed(started));
        }
    }
}

fn list_tables(session: &QuerySession, out: &mut dyn Write) -> std::io::Result<()> {
    let tables = session.tables();
    let width = tables.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    // "of": the object or model whose stored table the relation reads.
    writeln!(out, " {:width$} | kind    | of", "name")?;
    writeln!(out, "-{}-+---------+-{}", "-".repeat(width), "-".repeat(16))?;
    for t in &tables {
        writeln!(out, " {:width$} | {:7} | {}", t.name, t.relation.describe(), t.table)?;
    }
    writeln!(out, "({} tables)", tables.len())
}

fn describe(schema: &SchemaRef, out: &mut dyn Write) -> std::io::Result<()> {
    let width = schema.fields().iter().map(|f| f.name().len()).max().unwrap_or(6).max(6);
    writeln!(out, " {:width$} | type", "column")?;
    writeln!(out, "-{}-+-{}", "-".repeat(width), "-".repeat(24))?;
    for f in schema.fields() {
        writeln!(out, " {:width$} | {}", f.name(), sql_type_name(f.data_type()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_commands_only_between_statements() {
        assert_eq!(command("", "  \\d account "), Some("\\d account"));
        assert_eq!(command("SELECT 1;\n\n", "\\d"), Some("\\d"));
        assert_eq!(command("SELECT 'a\n", "\\d'"), None);
        assert_eq!(command("", "SELECT 1;"), None);
    }
}

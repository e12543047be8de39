//! The interactive SQL shell: line editing and history, statements across lines up to `;`,
//! and backslash commands (`\d`, `\d name`, `\timing`, `\q`).

use std::time::Instant;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tidemark_query::{Format, QuerySession};

use crate::sql_cmd::{elapsed, report, write_result};

const HELP: &str = "\
  \\d            list tables (live, _history and _scd2 per object)
  \\d NAME       describe a table's columns
  \\timing       show how long each statement took (toggle)
  \\q            quit (or Ctrl-D)
  Statements end with ';' and may span lines. Ctrl-C clears the current input.";

fn history_file() -> Option<std::path::PathBuf> {
    std::env::var_os("TIDEMARK_HISTORY").map(Into::into).or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".tidemark_history")))
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
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match trimmed {
                "\\q" | "\\quit" => break,
                "\\?" | "\\h" | "\\help" => println!("{HELP}"),
                "\\timing" => {
                    timing = !timing;
                    println!("Timing is {}.", if timing { "on" } else { "off" });
                }
                "\\d" => list_tables(session),
                other => match other.strip_prefix("\\d ") {
                    Some(name) => describe(session, name.trim()).await,
                    None => println!("unknown command {other}; \\? for help"),
                },
            }
            continue;
        }
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

fn list_tables(session: &QuerySession) {
    let tables = session.tables();
    let width = tables.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!(" {:width$} | kind    | object", "name");
    println!("-{}-+---------+-{}", "-".repeat(width), "-".repeat(16));
    for t in &tables {
        println!(" {:width$} | {:7} | {}", t.name, t.relation.describe(), t.table);
    }
    println!("({} tables)", tables.len());
}

async fn describe(session: &QuerySession, name: &str) {
    match session.describe(name).await {
        Ok(schema) => {
            let width = schema.fields().iter().map(|f| f.name().len()).max().unwrap_or(6).max(6);
            println!(" {:width$} | type", "column");
            println!("-{}-+-{}", "-".repeat(width), "-".repeat(24));
            for f in schema.fields() {
                println!(" {:width$} | {}", f.name(), f.data_type());
            }
        }
        Err(e) => eprintln!("error: {e}"),
    }
}

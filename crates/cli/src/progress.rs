//! Progress display: bars on a terminal (objects, records, rate), nothing extra otherwise
//! (structured logs carry the same information).

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;
use tidemark_lake::ingest::IngestObserver;
use tidemark_lake::source::Position;
use tidemark_sync::{Api, ObjectReport, SyncObserver};

pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    /// Bars when stderr is a terminal and `enabled`; a hidden display otherwise.
    pub fn new(enabled: bool) -> Progress {
        let target =
            if enabled && std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>12} {wide_bar} {pos}/{len} objects {elapsed}").expect("valid template"),
        );
        overall.set_prefix("sync");
        Progress { multi, overall, bars: Mutex::new(HashMap::new()) }
    }

    /// A display for a source's run: a line per table, no objects bar.
    pub fn for_source(enabled: bool) -> Progress {
        let progress = Progress::new(enabled);
        progress.overall.set_style(ProgressStyle::with_template("{prefix:>12} {elapsed}").expect("valid template"));
        progress
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl SyncObserver for Progress {
    fn run_started(&self, objects: usize) {
        self.overall.set_length(objects as u64);
    }

    fn object_started(&self, object: &str, api: Api, expected: Option<u64>) {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(expected.unwrap_or(0)));
        let template = if expected.is_some() {
            "{prefix:>12} {bar:30} {human_pos}/{human_len} records {per_sec} {msg}"
        } else {
            "{prefix:>12} {spinner} {human_pos} records {per_sec} {msg}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.set_prefix(object.to_owned());
        bar.set_message(api.as_str());
        self.bars.lock().insert(object.to_owned(), bar);
    }

    fn records_read(&self, object: &str, records: u64) {
        if let Some(bar) = self.bars.lock().get(object) {
            bar.inc(records);
        }
    }

    fn object_finished(&self, report: &ObjectReport) {
        if let Some(bar) = self.bars.lock().remove(&report.object) {
            bar.finish_and_clear();
        }
        self.overall.inc(1);
    }
}

/// Sources (and anything else `Ingest` drives): versions written per table, and the last commit.
impl IngestObserver for Progress {
    fn versions_written(&self, source: &str, table: &str, versions: u64) {
        let name = format!("{source}.{table}");
        let mut bars = self.bars.lock();
        let bar = bars.entry(name.clone()).or_insert_with(|| {
            let bar = self.multi.insert_before(&self.overall, ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {human_pos} versions {per_sec} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name);
            bar
        });
        bar.inc(versions);
    }

    fn committed(&self, source: &str, table: &str, versions: u64, _position: Position) {
        if let Some(bar) = self.bars.lock().get(&format!("{source}.{table}")) {
            bar.set_message(format!("(last commit: {versions})"));
        }
    }
}

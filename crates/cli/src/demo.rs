//! `tidemark demo`: the whole main job on a simulated org, in one command.
//!
//! Starts the simulator in-process, syncs every object into a local lake, moves the org's
//! clock through a round of changes (updates, creates, soft and hard deletes, undeletes,
//! parent renames that change formulas, and a new custom field), syncs again, and shows what
//! the lake captured.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tidemark_lake::LakeLocation;
use tidemark_salesforce::{AuthConfig, ClientConfig, SalesforceClient};
use tidemark_sfsim::changes::{Amount, ChangeRoundSpec, apply_change_round};
use tidemark_sfsim::org::schema_change::SchemaChange;
use tidemark_sfsim::value::Value;
use tidemark_sfsim::{SimConfig, SimServer};
use tidemark_sync::SyncSettings;
use tidemark_sync::config::ObjectSettings;

use crate::lake_cmd::{Outcome, print_report, run_sync, status};

pub struct DemoArgs {
    pub lake: String,
    pub accounts: u64,
    pub seed: u64,
    /// Delete an earlier demo's lake at `lake` first.
    pub fresh: bool,
    pub progress: bool,
}

/// What a demo lake's folder may hold: what `tidemark demo` writes.
const DEMO_LAKE_ENTRIES: [&str; 3] = ["objects", "marts", "_tidemark"];

/// The demo's dimension model: Contact joined with its Account, a row per change of either.
const DEMO_MODEL: &str = "dating: source_time
key: [Id]
sources:
  - { name: contact, object: Contact, columns: [FirstName, LastName, Email, Title] }
  - { name: account, object: Account, join: { AccountId: Id }, columns: [Name, Industry] }
";

/// Makes sure the demo writes into an empty folder: a second demo into the same lake would
/// meet a different org (new Ids) and record its records as deleted. With `fresh`, an earlier
/// demo's lake is removed; a folder holding anything else is never touched.
fn prepare_lake_folder(path: &std::path::Path, fresh: bool) -> anyhow::Result<()> {
    let entries: Vec<String> = match std::fs::read_dir(path) {
        Ok(dir) => dir.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if entries.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = entries.iter().filter(|e| !DEMO_LAKE_ENTRIES.contains(&e.as_str())).collect();
    if !foreign.is_empty() {
        anyhow::bail!(
            "{} is not empty and not a Tidemark lake (it holds {}): choose another folder with --lake",
            path.display(),
            foreign.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    if !fresh {
        anyhow::bail!(
            "{} already holds a lake from an earlier demo: pass --fresh to replace it, or --lake for another folder \
             (each demo starts a new simulated org, so syncing it into the old lake would record every old record as deleted)",
            path.display()
        );
    }
    for entry in DEMO_LAKE_ENTRIES {
        let p = path.join(entry);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    println!("Removed the earlier demo lake in {}", path.display());
    Ok(())
}

/// Settings for the demo: reconcile Ids and re-snapshot Contact formulas on every run, so one
/// change round shows every kind of version.
fn demo_settings() -> SyncSettings {
    let mut settings = SyncSettings { reconcile_every: std::time::Duration::ZERO, ..SyncSettings::default() };
    settings.objects.insert(
        "Contact".into(),
        ObjectSettings { formula_snapshot_every: Some(std::time::Duration::ZERO), ..ObjectSettings::default() },
    );
    settings
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<Outcome> {
    let lake = LakeLocation::parse(&args.lake)?;
    match lake.root().to_file_path() {
        Ok(path) => prepare_lake_folder(&path, args.fresh)?,
        Err(()) => anyhow::bail!("the demo writes a local lake: give --lake a folder, not {}", args.lake),
    }
    println!("Starting a simulated Salesforce org: {} Accounts, seed {}", args.accounts, args.seed);
    let sim = SimServer::new(SimConfig { accounts: args.accounts, seed: args.seed, ..SimConfig::default() })
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("starting the simulator")?;
    let auth = AuthConfig::ClientCredentials {
        login_url: sim.base_url().to_owned(),
        client_id: sim.credentials.client_id.clone(),
        client_secret: sim.credentials.client_secret.clone().into(),
    };
    let client = Arc::new(SalesforceClient::connect(auth, ClientConfig::default()).await.context("logging in to the simulator")?);
    let settings = demo_settings();

    // One record per object starts in the recycle bin, so the round of changes can restore it
    // and the lake shows a delete followed by an undelete.
    {
        let binned = ChangeRoundSpec { deletes: Amount::Count(1), ..ChangeRoundSpec::default() };
        apply_change_round(&mut sim.state.org.write(), &binned, args.seed + 2)
            .map_err(|e| anyhow::anyhow!("change round: {e}"))?;
    }

    println!("\n1/4 Initial sync into {}", lake.root());
    let first = run_sync(client.clone(), lake.clone(), &settings, Default::default(), Vec::new(), false, args.progress).await?;
    let outcome = print_report(&first);
    if outcome != Outcome::Complete {
        return Ok(outcome);
    }

    // The org's time before the changes, for the as-of query printed at the end.
    let before = chrono::DateTime::from_timestamp_millis(sim.state.org.read().now_millis())
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    println!("\n2/4 One hour passes in the org:");
    {
        let mut org = sim.state.org.write();
        org.advance_clock(chrono::Duration::hours(1));
        let add = SchemaChange::AddField {
            field: "Tier__c".into(),
            field_type: "picklist".into(),
            label: Some("Tier".into()),
            length: None,
            precision: None,
            scale: None,
            picklist_values: Some(vec!["Gold".into(), "Silver".into(), "Bronze".into()]),
            reference_to: None,
        };
        org.apply_schema_change("Account", &add).map_err(|e| anyhow::anyhow!("schema change: {e}"))?;
        println!("  - new custom field Account.Tier__c");
        let table = org.table("Account").context("Account exists")?;
        let slot = table.def.slot("Tier__c");
        let ids: Vec<_> = table.rows().iter().filter(|r| !table.is_deleted(r)).take(25).map(|r| table.id_of(r)).collect();
        for (i, id) in ids.iter().enumerate() {
            org.update_record(id, vec![(slot, Value::str(["Gold", "Silver", "Bronze"][i % 3]))])
                .map_err(|e| anyhow::anyhow!("update: {e}"))?;
        }
        println!("  - Tier__c set on {} Accounts", ids.len());
        // Before this round's deletes, so what comes back is what the first sync saw deleted.
        let undelete = ChangeRoundSpec { undeletes: Amount::Count(1), ..ChangeRoundSpec::default() };
        let restored =
            apply_change_round(&mut org, &undelete, args.seed + 1).map_err(|e| anyhow::anyhow!("change round: {e}"))?;
        println!("  - {} records restored from the recycle bin (deleted before the first sync)", restored.undeleted.len());
        let spec = ChangeRoundSpec {
            objects: None,
            updates: Amount::Share { share: 0.02 },
            creates: Amount::Count(10),
            deletes: Amount::Count(5),
            hard_deletes: Amount::Count(2),
            undeletes: Amount::Count(0),
            parent_renames: Amount::Count(5),
        };
        let summary = apply_change_round(&mut org, &spec, args.seed).map_err(|e| anyhow::anyhow!("change round: {e}"))?;
        println!(
            "  - {} updates, {} creates, {} soft deletes, {} hard deletes, {} Account renames (Contact formulas follow)",
            summary.updated.len(),
            summary.created.len(),
            summary.deleted.len(),
            summary.hard_deleted.len(),
            summary.renamed_parents.len()
        );
        org.advance_clock(chrono::Duration::minutes(1));
    }

    println!("\n3/4 Incremental sync");
    let second = run_sync(client.clone(), lake.clone(), &settings, Default::default(), Vec::new(), false, args.progress).await?;
    let outcome = print_report(&second);

    println!("\n4/4 A dimension model: dim_contact, each Contact joined with its Account, a row per change of either");
    let model: tidemark_core::models::ModelConfig = tidemark_core::config::load_str(DEMO_MODEL, &|_| None)?;
    model.validate("dim_contact")?;
    let built =
        tidemark_models::ModelLoad::new(lake.clone(), "dim_contact", model).run().await.context("building dim_contact")?;
    println!(
        "  {} rows, {} of them current, in {:.1}s (marts/dim_contact)",
        built.counts.inserted,
        built.counts.current_rows,
        built.millis as f64 / 1000.0
    );

    println!("\nWhat the lake holds:");
    status(&lake, false).await?;
    println!("\nSchema events:");
    status(&lake, true).await?;
    let root = lake.root().to_file_path().map(|p| p.display().to_string()).unwrap_or_else(|()| lake.root().to_string());
    let lake_arg = args.lake.as_str();
    println!(
        "\nEvery object is a Delta table under {root}objects/<object>, queryable with SQL:\n\
         \n  tidemark sql --lake {lake_arg} \"SELECT industry, count(*) AS n FROM account GROUP BY 1 ORDER BY n DESC\"\
         \n  tidemark sql --lake {lake_arg} \"SELECT id, name, tier__c, valid_from, valid_to, is_current FROM account_scd2 WHERE tier__c IS NOT NULL\"\
         \n  tidemark sql --lake {lake_arg} \"SELECT _origin, _deleted, count(*) FROM contact_history GROUP BY 1, 2\"\
         \n  tidemark sql --lake {lake_arg} \"SELECT (SELECT count(*) FROM as_of('opportunity', TIMESTAMP '{before}')) AS before, (SELECT count(*) FROM opportunity) AS now\"\
         \n  tidemark sql --lake {lake_arg} \"SELECT id, lastname, name, industry, valid_from, valid_to FROM dim_contact WHERE NOT is_current LIMIT 5\"\
         \n  tidemark sql --lake {lake_arg}                      # the shell; \\d lists the tables\
         \n  tidemark catalog ddl --engine duckdb --lake {lake_arg}   # the same views in DuckDB\
         \n\nand `tidemark status --lake {lake_arg}` at any time; `tidemark demo --fresh` starts over."
    );
    sim.shutdown().await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_demo_refuses_an_earlier_lake_unless_fresh_and_never_touches_other_folders() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        prepare_lake_folder(&lake, false).unwrap();
        std::fs::create_dir_all(lake.join("objects/account/_delta_log")).unwrap();
        std::fs::create_dir_all(lake.join("_tidemark/sync_runs")).unwrap();
        let e = prepare_lake_folder(&lake, false).unwrap_err();
        assert!(e.to_string().contains("--fresh"), "{e}");
        assert!(lake.join("objects/account").exists(), "nothing removed without --fresh");
        prepare_lake_folder(&lake, true).unwrap();
        assert!(!lake.join("objects").exists() && !lake.join("_tidemark").exists());

        std::fs::write(lake.join("thesis.tex"), b"precious").unwrap();
        std::fs::create_dir_all(lake.join("objects")).unwrap();
        let e = prepare_lake_folder(&lake, true).unwrap_err();
        assert!(e.to_string().contains("not a Tidemark lake") && e.to_string().contains("thesis.tex"), "{e}");
        assert!(lake.join("thesis.tex").exists() && lake.join("objects").exists(), "a foreign folder is never touched");
    }
}

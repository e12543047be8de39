//! A server pinned to an older table version (`--table-version`): it reads that version, and
//! filters rows, masks and denies columns and refuses hidden relations just as the live server.

use super::{ALICE, BOB, DENIED_ACCOUNT, PINNED_VERSION, ROOT, assert_denied, fixture, last4, lit, masked};

#[test]
fn a_pinned_table_version_is_filtered_and_masked_alike() {
    let fx = fixture();
    let config = fx.write_config("access-pinned.yaml", Some("off"), true);
    let pinned = fx.start(&config, &["--table-version", PINNED_VERSION], "serve-sql-pinned");
    let industry = lit(&fx.alice_industry);

    // The pinned server reads the old version: root's counts differ from the live server's.
    let sql = "SELECT count(*) FROM account_history";
    let (then, now) = (pinned.number(ROOT, sql), fx.server.number(ROOT, sql));
    assert!(then > 0 && then < now, "account_history at version {PINNED_VERSION} ({then}) is older than now ({now})");

    for relation in ["account", "account_history", "account_scd2"] {
        let rows = pinned.rows(ROOT, &format!("SELECT id, phone FROM {relation} WHERE industry = {industry}"));
        let mut want: Vec<String> = rows.iter().map(|r| format!("{}|{}", r[0], masked(&r[1], last4))).collect();
        want.sort();
        assert!(!want.is_empty(), "{relation} at version {PINNED_VERSION}: rows of {industry}");
        let got = pinned.sorted(ALICE, &format!("SELECT id, phone FROM {relation}"));
        assert_eq!(got, want, "alice's {relation} at version {PINNED_VERSION}: filtered and masked");
        let all = pinned.columns(ROOT, &format!("SELECT * FROM {relation} LIMIT 0"));
        let want: Vec<String> = all.into_iter().filter(|c| !DENIED_ACCOUNT.contains(&c.as_str())).collect();
        assert_eq!(pinned.columns(ALICE, &format!("SELECT * FROM {relation} LIMIT 0")), want, "{relation}'s columns");
    }
    let bob = pinned.number(ROOT, &format!("SELECT count(*) FROM account WHERE industry = {}", lit(&fx.bob_industry)));
    assert_eq!(pinned.number(BOB, "SELECT count(*) FROM account"), bob, "bob's accounts at version {PINNED_VERSION}");
    let stderr = pinned.error(ALICE, "SELECT count(*) FROM opportunity");
    assert_denied(&stderr, "opportunity", "opportunity at a pinned version");
}

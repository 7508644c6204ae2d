//! Debian's smbtorture against a private smbd: the share that loads dfsr
//! must behave exactly like the one that does not, and our own `dfsr`
//! suite runs.

mod support;

use std::collections::BTreeMap;
use support::{subunit_outcomes, Smbd, SmbdConfig};

/// The suites of issue 2; each is run on its own so names are unique
/// (smbtorture's subunit names repeat across suites).
const SUITES: &[&str] = &[
    "smb2.streams", "smb2.acls", "smb2.create", "smb2.rename", "smb2.getinfo",
    "smb2.setinfo", "smb2.dir", "smb2.rw", "raw.acls", "raw.streams",
];

fn outcomes(smbd: &Smbd, share: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for suite in SUITES {
        let out = smbd.smbtorture(share, &[], &[suite]);
        let text = String::from_utf8_lossy(&out.stdout);
        let found = subunit_outcomes(&text);
        assert!(
            !found.is_empty(),
            "smbtorture {suite} on [{share}] reported no tests: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        for (name, outcome) in found {
            all.insert(format!("{suite}.{name}"), outcome);
        }
    }
    all
}

fn listing(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect()
}

#[test]
fn torture_outcomes_identical_with_and_without_dfsr() {
    let smbd = Smbd::start(SmbdConfig::default());
    let data = outcomes(&smbd, "data");
    let plain = outcomes(&smbd, "plain");
    let summary = |m: &BTreeMap<String, String>| {
        let mut counts = BTreeMap::new();
        for v in m.values() {
            *counts.entry(v.clone()).or_insert(0) += 1;
        }
        counts
    };
    println!("[data]  (dfsr acl_xattr streams_xattr): {:?}", summary(&data));
    println!("[plain] (acl_xattr streams_xattr):      {:?}", summary(&plain));
    if data != plain {
        let diff: Vec<String> = data
            .keys()
            .chain(plain.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| data.get(*k) != plain.get(*k))
            .map(|k| format!("  {k}: data={:?} plain={:?}", data.get(k), plain.get(k)))
            .collect();
        panic!(
            "outcomes differ:\n{}\n[data]:\n{}[plain]:\n{}",
            diff.join("\n"),
            listing(&data),
            listing(&plain)
        );
    }
    // The run must have exercised the suites, not failed to connect.
    assert!(data.len() >= 90, "only {} tests ran:\n{}", data.len(), listing(&data));
    assert!(data.values().filter(|v| *v == "success").count() >= 70, "{}", listing(&data));
}

#[test]
fn dfsr_torture_suite_runs_its_test() {
    let smbd = Smbd::start(SmbdConfig::default());
    let module = format!("--load-module={}", support::torture_so().display());
    let out = smbd.smbtorture("data", &[&module], &["dfsr"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let found = subunit_outcomes(&text);
    // dfsr.namespace.referral needs a namespace and options (tests/namespace_smbd.rs
    // runs it), dfsr.meet.* a dfsrd (tests/meet_torture.rs); here they
    // must say so and skip.
    let skip = |t: &str| (t.to_string(), "skip".to_string());
    assert_eq!(
        found,
        vec![
            ("ads-roundtrip".to_string(), "success".to_string()),
            skip("namespace.referral"),
            skip("namespace.referral-bench"),
            skip("meet.install"),
            skip("meet.replace"),
            skip("meet.move-remove"),
            skip("meet.sharing-violation"),
            skip("meet.lease"),
            skip("meet.bad-names"),
        ],
        "smbtorture dfsr: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The test cleans up after itself.
    assert!(!smbd.share_path("data").join("dfsr_ads_roundtrip.txt").exists());
}

use super::*;
use std::collections::HashMap;

fn g(n: u8) -> Guid {
    Guid([n; 16])
}

struct Shares(HashMap<String, (String, Vec<String>)>);

impl ShareLookup for Shares {
    fn share(&self, name: &str) -> Option<(String, Vec<String>)> {
        self.0.get(&name.to_lowercase()).cloned()
    }
}

fn shares() -> Shares {
    let mut m = HashMap::new();
    let with = |p: &str, v: &[&str]| (p.to_string(), v.iter().map(|s| s.to_string()).collect());
    m.insert("data".into(), with("/srv/data", &["acl_xattr", "dfsr"]));
    m.insert("other".into(), with("/srv/other", &["dfsr"]));
    m.insert("inner".into(), with("/srv/data/inner", &["dfsr"]));
    m.insert("plain".into(), with("/srv/plain", &["acl_xattr"]));
    Shares(m)
}

/// A group with folders Docs and Tools, members A and B (B -> A enabled).
fn config() -> ReplicationConfig {
    let mut c = ReplicationConfig::default();
    c.add_group("Sales", g(1)).unwrap();
    c.add_folder("sales", "Docs", g(2)).unwrap();
    c.add_folder("Sales", "Tools", g(7)).unwrap();
    c.add_member("Sales", "A", Address::parse("10.0.0.1").unwrap(), g(3)).unwrap();
    c.add_member("Sales", "B", Address::parse("10.0.0.2:6000").unwrap(), g(4)).unwrap();
    c.add_connection("Sales", "b", "a", true, g(5)).unwrap();
    c
}

#[test]
fn addresses_take_a_default_port_and_refuse_nonsense() {
    assert_eq!(Address::parse("host").unwrap(), Address { host: "host".into(), port: 5722 });
    assert_eq!(Address::parse("h:7").unwrap().port, 7);
    assert_eq!(Address::parse("[fe80::1]:9").unwrap(), Address { host: "fe80::1".into(), port: 9 });
    assert_eq!(Address::parse("fe80::1").unwrap().port, 5722);
    assert_eq!(Address::parse("[fe80::1]:9").unwrap().to_string(), "[fe80::1]:9");
    for bad in ["", ":5", "h:0", "h:70000", "h:x", "a b", "[::1", "[::1]x", "user@h"] {
        assert!(Address::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn names_are_unique_regardless_of_case_and_checked() {
    let mut c = config();
    assert!(matches!(c.add_group("SALES", g(9)), Err(ConfigError::Duplicate { .. })));
    assert!(matches!(c.add_folder("Sales", "docs", g(9)), Err(ConfigError::Duplicate { .. })));
    assert!(matches!(c.add_member("Sales", "a", Address::parse("x").unwrap(), g(9)), Err(ConfigError::Duplicate { .. })));
    for bad in ["", " x", "a/b", "a:b", "a\\b", "tab\t", "q?"] {
        assert!(matches!(c.add_folder("Sales", bad, g(9)), Err(ConfigError::BadName { .. })), "{bad:?}");
    }
    assert_eq!(c, config(), "refused edits changed the configuration");
}

#[test]
fn guids_are_never_reused() {
    let mut c = config();
    let e = c.add_folder("Sales", "New", g(3)).unwrap_err();
    assert_eq!(e.to_string(), format!("GUID {} is already the member \"A\"", g(3)));
    assert!(c.add_group("Other", g(1)).is_err());
}

#[test]
fn connections_name_existing_different_members() {
    let mut c = config();
    assert!(matches!(c.add_connection("Sales", "A", "C", true, g(9)), Err(ConfigError::NoMember { .. })));
    assert!(matches!(c.add_connection("Sales", "A", "a", true, g(9)), Err(ConfigError::SelfConnection(_))));
    assert!(matches!(c.add_connection("Sales", "B", "A", true, g(9)), Err(ConfigError::Duplicate { .. })));
    c.add_connection("Sales", "A", "B", false, g(9)).unwrap();
    assert!(!c.group("Sales").unwrap().connection("A", "B").unwrap().enabled);
    c.set_connection_enabled("Sales", "a", "b", true).unwrap();
    assert!(c.group("Sales").unwrap().connection("A", "B").unwrap().enabled);
    assert!(matches!(c.set_connection_enabled("Nope", "a", "b", true), Err(ConfigError::NoGroup(_))));
}

#[test]
fn a_local_membership_needs_a_dfsr_share_that_nests_with_no_other() {
    let mut c = config();
    let s = shares();
    let local = Some(("a", &s as &dyn ShareLookup));
    let set = |c: &mut ReplicationConfig, folder: &str, share: &str| {
        c.set_membership("Sales", folder, "A", share, (false, false), local)
    };
    assert!(matches!(set(&mut c, "Docs", "missing"), Err(ConfigError::Share { .. })));
    let e = set(&mut c, "Docs", "plain").unwrap_err();
    assert!(e.to_string().contains("no dfsr"), "{e}");
    set(&mut c, "Docs", "data").unwrap();
    // Replacing its own membership is not a conflict with itself.
    set(&mut c, "Docs", "data").unwrap();
    assert!(matches!(set(&mut c, "Tools", "data"), Err(ConfigError::ShareTaken { .. })));
    let e = set(&mut c, "Tools", "inner").unwrap_err();
    assert!(matches!(e, ConfigError::NestedShare(..)), "{e}");
    set(&mut c, "Tools", "other").unwrap();
    // Another member's share is on another server: not checked here.
    c.set_membership("Sales", "Docs", "B", "whatever", (false, false), local).unwrap();
    assert_eq!(c.local_memberships("A").count(), 2);
    assert_eq!(c.local_memberships("b").count(), 1);
}

#[test]
fn one_primary_per_folder_and_never_read_only() {
    let mut c = config();
    c.set_membership("Sales", "Docs", "A", "data", (true, false), None).unwrap();
    let e = c.set_membership("Sales", "Docs", "B", "data", (true, false), None).unwrap_err();
    assert!(matches!(e, ConfigError::SecondPrimary { .. }), "{e}");
    assert!(matches!(
        c.set_membership("Sales", "Docs", "B", "data", (true, true), None),
        Err(ConfigError::PrimaryReadOnly { .. })
    ));
    c.set_membership("Sales", "Docs", "A", "data", (false, false), None).unwrap();
    c.set_membership("Sales", "Docs", "B", "data", (true, false), None).unwrap();
}

#[test]
fn removing_a_member_removes_its_connections_and_memberships() {
    let mut c = config();
    c.set_membership("Sales", "Docs", "B", "data", (false, false), None).unwrap();
    c.remove_member("Sales", "b").unwrap();
    let grp = c.group("Sales").unwrap();
    assert!(grp.connections.is_empty() && grp.memberships.is_empty() && grp.members.len() == 1);
    assert!(matches!(c.remove_membership("Sales", "Docs", "A"), Err(ConfigError::NoMembership { .. })));
    c.remove_folder("Sales", "DOCS").unwrap();
    assert!(c.remove_group("sales").is_ok());
    assert!(c.groups.is_empty());
}

#[test]
fn export_and_import_keep_every_guid() {
    let mut c = config();
    c.set_membership("Sales", "Docs", "A", "data", (true, false), None).unwrap();
    c.set_membership("Sales", "Docs", "B", "other", (false, true), None).unwrap();
    let doc = c.group("Sales").unwrap().export_document().to_string();
    let back = Group::from_document(&doc).unwrap();
    assert_eq!(&back, c.group("Sales").unwrap());
    // On the other member: its own share is checked; then the same group.
    let s = shares();
    let mut other = ReplicationConfig::default();
    other.import_group(back.clone(), Some(("B", &s))).unwrap();
    assert_eq!(other.groups, vec![back.clone()]);
    // Importing again replaces it (same GUID).
    other.import_group(back.clone(), Some(("B", &s))).unwrap();
    assert_eq!(other.groups.len(), 1);
    // A different group with its name is refused, and so is a document
    // whose local share is not usable here.
    let mut doc = back.to_json();
    doc["id"] = json!(g(42).to_string());
    for (i, key) in [("folders", 0), ("folders", 1), ("members", 0), ("members", 1), ("connections", 0)].iter().enumerate() {
        doc[key.0][key.1]["id"] = json!(g(50 + i as u8).to_string());
    }
    let renamed = Group::from_json(&doc).unwrap();
    assert!(matches!(other.import_group(renamed, None), Err(ConfigError::Duplicate { .. })));
    let mut fresh = ReplicationConfig::default();
    let mut bad_share = back.clone();
    bad_share.memberships[1].share = "plain".into();
    assert!(matches!(fresh.import_group(bad_share, Some(("B", &s))), Err(ConfigError::Share { .. })));
    assert!(fresh.groups.is_empty());
}

#[test]
fn broken_documents_are_refused_with_the_reason() {
    let c = config();
    let good = c.group("Sales").unwrap().export_document();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"format": 2, "group": good["group"]}), "format"),
        (json!({"format": 1}), "no \"group\""),
        ({ let mut v = good.clone(); v["group"]["id"] = json!("nope"); v }, "not a GUID"),
        ({ let mut v = good.clone(); v["group"]["connections"][0]["from"] = json!("Z"); v }, "no member \"Z\""),
        ({ let mut v = good.clone(); v["group"]["folders"][1]["name"] = json!("docs"); v }, "already exists"),
        ({ let mut v = good.clone(); v["group"]["folders"][1]["id"] = v["group"]["folders"][0]["id"].clone(); v }, "already the folder"),
        ({ let mut v = good.clone(); v["group"]["members"][0]["address"] = json!("h:0"); v }, "port"),
    ];
    for (doc, want) in cases {
        let e = Group::from_document(&doc.to_string()).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
    assert!(Group::from_document("{").is_err());
}

#[test]
fn the_whole_configuration_round_trips() {
    let mut c = config();
    c.add_group("Eng", g(20)).unwrap();
    c.set_membership("Sales", "Tools", "B", "x", (false, false), None).unwrap();
    assert_eq!(ReplicationConfig::from_json(&c.to_json()).unwrap(), c);
}

#[test]
fn only_configured_enabled_connections_from_us_are_served() {
    let mut c = config();
    assert_eq!(ReplicationConfig::default().check_served_connection(&g(99), &g(98), "A"), Ok(()));
    // B -> A is g(5): served by B, not by A.
    assert_eq!(c.check_served_connection(&g(1), &g(5), "b"), Ok(()));
    assert!(c.check_served_connection(&g(1), &g(5), "A").unwrap_err().contains("pulls from \"B\""));
    assert!(c.check_served_connection(&g(9), &g(5), "B").unwrap_err().contains("no replication group"));
    assert!(c.check_served_connection(&g(1), &g(9), "B").unwrap_err().contains("no connection"));
    c.set_connection_enabled("Sales", "B", "A", false).unwrap();
    assert!(c.check_served_connection(&g(1), &g(5), "B").unwrap_err().contains("disabled"));
}

proptest::proptest! {
    /// Any edit of an export document is read back or refused with a
    /// reason, never a panic; what reads exports to itself (the property
    /// of fuzz/fuzz_targets/config_document.rs, on the stable toolchain).
    #[test]
    fn edited_documents_never_panic_and_round_trip(edits in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..8)) {
        let c = config();
        let mut doc = c.group("Sales").unwrap().export_document().to_string().into_bytes();
        for (at, b) in edits {
            let i = at % doc.len();
            doc[i] = b;
        }
        let Ok(text) = std::str::from_utf8(&doc) else { return Ok(()) };
        if let Ok(g) = Group::from_document(text) {
            let again = Group::from_document(&g.export_document().to_string()).unwrap();
            proptest::prop_assert_eq!(&again, &g);
            let mut empty = ReplicationConfig::default();
            let _ = empty.import_group(g, None);
        }
    }
}

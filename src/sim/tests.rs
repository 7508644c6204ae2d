//! Small fixed scenarios, scripted on a simulation without random
//! operations.
use super::member::{Ctx, Member};
use super::store::{encode_record, FileStore, MemberStore, MemoryStore, Record};
use super::*;
use crate::engine::rules::{compare_updates, LossReason};
use crate::engine::update::Update;

fn quiet(members: usize) -> Simulation {
    let mut cfg = SimConfig::new(members, 0, 7);
    cfg.faults = Faults::none();
    Simulation::new(cfg).unwrap()
}

fn root() -> Uid {
    Uid::root_of(FOLDER)
}

fn create(sim: &mut Simulation, m: usize, parent: Uid, name: &str, dir: bool, h: u8) -> Update {
    sim.local(m, |mem: &mut Member, ctx: &mut Ctx<'_>| {
        mem.local_create(parent, name, dir, [h; 20], ctx)
    })
    .unwrap()
    .unwrap()
}

fn settle(sim: &mut Simulation) {
    sim.quiesce().unwrap();
    sim.check().unwrap();
}

#[test]
fn smoke_no_faults() {
    let mut cfg = SimConfig::new(3, 300, 1);
    cfg.faults = Faults::none();
    let s = run(cfg).unwrap();
    assert!(s.stats.ops_applied > 0);
    assert_eq!(s.stats.crashes, 0);
}

#[test]
fn faults_parse() {
    assert_eq!(Faults::parse("all").unwrap(), Faults::all());
    assert_eq!(Faults::parse("none").unwrap(), Faults::none());
    let f = Faults::parse("drop,crash").unwrap();
    assert!(f.drop && f.crash && !f.delay && !f.reorder && !f.partition);
    assert!(Faults::parse("drop,bogus").is_err());
}

#[test]
fn two_members_concurrent_edit() {
    let mut sim = quiet(2);
    let f = create(&mut sim, 0, root(), "a.txt", false, 1);
    settle(&mut sim);
    let a = sim
        .local(0, |m: &mut Member, c: &mut Ctx<'_>| {
            m.local_modify(f.uid, [2; 20], c)
        })
        .unwrap()
        .unwrap();
    let b = sim
        .local(1, |m: &mut Member, c: &mut Ctx<'_>| {
            m.local_modify(f.uid, [3; 20], c)
        })
        .unwrap()
        .unwrap();
    settle(&mut sim);
    let (win, lose) = if compare_updates(&a, &b).is_gt() {
        (a, b)
    } else {
        (b, a)
    };
    for i in 0..2 {
        assert_eq!(sim.member(i).db.get(&f.uid).map(|u| u.gvsn), Some(win.gvsn));
    }
    // The member that had installed the loser keeps it in ConflictAndDeleted.
    let loser_member = usize::from(lose.gvsn.db == super::member_guid(1));
    assert!(sim
        .member(loser_member)
        .conflicts
        .iter()
        .any(|r| r.gvsn == lose.gvsn && r.reason == LossReason::LostConflict));
    assert!(sim.stats().conflicts >= 1);
}

#[test]
fn name_collision() {
    let mut sim = quiet(2);
    let a = create(&mut sim, 0, root(), "x.txt", false, 1);
    let b = create(&mut sim, 1, root(), "X.TXT", false, 2);
    settle(&mut sim);
    let paths = sim.member(0).paths();
    assert_eq!(paths.len(), 1, "{paths:?}");
    let loser = if compare_updates(&a, &b).is_gt() {
        b
    } else {
        a
    };
    for i in 0..2 {
        let t = sim.member(i).db.get(&loser.uid).unwrap();
        assert!(!t.present && t.name_conflict);
    }
    assert!(sim.stats().name_conflicts >= 1);
}

#[test]
fn delete_dir_vs_edit_child() {
    let mut sim = quiet(2);
    let d = create(&mut sim, 0, root(), "d", true, 0);
    let f = create(&mut sim, 0, d.uid, "f", false, 1);
    settle(&mut sim);
    sim.local(0, |m: &mut Member, c: &mut Ctx<'_>| {
        m.local_delete(d.uid, c)
    })
    .unwrap()
    .unwrap();
    sim.local(1, |m: &mut Member, c: &mut Ctx<'_>| {
        m.local_modify(f.uid, [9; 20], c)
    })
    .unwrap()
    .unwrap();
    settle(&mut sim);
    for i in 0..2 {
        assert!(sim.member(i).paths().is_empty(), "member {i}");
        assert!(!sim.member(i).db.get(&f.uid).unwrap().present);
    }
    // Member 1 had the edited child live: it is in its ConflictAndDeleted.
    assert!(sim.member(1).conflicts.iter().any(|r| r.uid == f.uid));
}

#[test]
fn move_cycle() {
    let mut sim = quiet(3);
    let x = create(&mut sim, 0, root(), "x", true, 0);
    let y = create(&mut sim, 0, root(), "y", true, 0);
    let z = create(&mut sim, 0, x.uid, "z", true, 0);
    settle(&mut sim);
    // Refused at the source: x under its own child.
    let r = sim
        .local(0, |m: &mut Member, c: &mut Ctx<'_>| {
            m.local_move(x.uid, z.uid, "x", c)
        })
        .unwrap();
    assert!(matches!(
        r,
        Err(LocalChangeError::MoveIntoDescendant { .. })
    ));
    // Crossing moves at two members: only receivers see the cycle.
    sim.local(0, |m: &mut Member, c: &mut Ctx<'_>| {
        m.local_move(x.uid, y.uid, "x", c)
    })
    .unwrap()
    .unwrap();
    sim.local(1, |m: &mut Member, c: &mut Ctx<'_>| {
        m.local_move(y.uid, x.uid, "y", c)
    })
    .unwrap()
    .unwrap();
    settle(&mut sim);
    assert!(sim.stats().cycle_breaks >= 1);
    for i in 0..3 {
        let p = sim.member(i).paths();
        assert_eq!(p.len(), 3);
        assert!(p.keys().all(|k| k.starts_with('/')), "{p:?}");
    }
}

#[test]
fn partition_then_heal() {
    let mut sim = quiet(3);
    sim.run_for(1000).unwrap();
    sim.partition(vec![true, false, false], 60_000);
    let a = create(&mut sim, 0, root(), "a", false, 1);
    let b = create(&mut sim, 1, root(), "b", false, 2);
    sim.run_for(30_000).unwrap();
    assert!(!sim.member(0).is_live(&b.uid));
    assert!(!sim.member(1).is_live(&a.uid));
    assert!(sim.member(2).is_live(&b.uid));
    settle(&mut sim);
    for i in 0..3 {
        assert!(sim.member(i).is_live(&a.uid) && sim.member(i).is_live(&b.uid));
    }
}

fn crash_mid_sync(store: StoreKind) {
    let mut cfg = SimConfig::new(2, 0, 11);
    cfg.faults = Faults::none();
    cfg.store = store;
    let mut sim = Simulation::new(cfg).unwrap();
    sim.run_for(1000).unwrap();
    for i in 0..300 {
        create(&mut sim, 0, root(), &format!("f{i}"), false, i as u8);
    }
    let mut guard = 0;
    while sim.member(1).paths().len() < 40 {
        assert!(sim.step_once().unwrap());
        guard += 1;
        assert!(guard < 100_000);
    }
    let before = sim.member(1).paths().len();
    assert!(before < 300, "the sync must still be running");
    sim.crash(1).unwrap();
    // What was committed survived the restart.
    assert_eq!(sim.member(1).paths().len(), before);
    settle(&mut sim);
    assert_eq!(sim.member(1).paths().len(), 300);
    assert_eq!(sim.stats().crashes, 1);
}

#[test]
fn crash_mid_sync_in_memory() {
    crash_mid_sync(StoreKind::Memory);
}

#[test]
fn crash_mid_sync_on_disk() {
    let dir = std::env::temp_dir().join(format!("dfsr-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    crash_mid_sync(StoreKind::Disk(dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn injected_divergence_is_named() {
    let mut sim = quiet(3);
    let d = create(&mut sim, 0, root(), "docs", true, 0);
    let f = create(&mut sim, 0, d.uid, "a.txt", false, 1);
    settle(&mut sim);
    if let Some(n) = sim.member_mut(2).tree.get_mut(&f.uid) {
        n.hash = [0xEE; 20];
    }
    match sim.check() {
        Err(SimError::Divergence { path, a, b, .. }) => {
            assert_eq!(path, "/docs/a.txt");
            assert_eq!((a, b), (0, 2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_store_ignores_torn_tail() {
    let path = std::env::temp_dir().join(format!("dfsr-sim-store-{}.log", std::process::id()));
    let mut st = FileStore::create(&path).unwrap();
    let a = Record::Counters {
        next_version: 10,
        last_clock: 20,
    };
    let b = Record::Unhold(Uid::new(Guid([1; 16]), 9));
    st.commit(std::slice::from_ref(&a)).unwrap();
    st.commit(std::slice::from_ref(&b)).unwrap();
    st.crash(true).unwrap();
    assert_eq!(st.load().unwrap(), vec![a.clone(), b.clone()]);
    // The torn tail was cut: new commits follow the good frames.
    st.commit(std::slice::from_ref(&a)).unwrap();
    assert_eq!(st.load().unwrap(), vec![a.clone(), b, a]);
    let _ = std::fs::remove_file(&path);
    let mut m = MemoryStore::new();
    m.commit(&[Record::Counters {
        next_version: 1,
        last_clock: 2,
    }])
    .unwrap();
    m.crash(true).unwrap();
    assert_eq!(m.load().unwrap().len(), 1);
    let mut buf = Vec::new();
    encode_record(&Record::Unhold(Uid::default()), &mut buf);
    assert_eq!(buf.len(), 1 + 24);
}

/// After the server restarts, its new `Responder` counts vector
/// generations from 1 again: the client must not keep the old one, or a
/// change waits for the CHANGE_NOTIFY time-out (300 s) instead of moments.
#[test]
fn a_change_after_a_server_restart_arrives_without_the_notify_timeout() {
    let mut sim = quiet(2);
    sim.run_for(1000).unwrap();
    for i in 0..5 {
        create(&mut sim, 0, root(), &format!("a{i}"), false, 1);
        sim.run_for(1000).unwrap();
    }
    settle(&mut sim);
    sim.crash(0).unwrap();
    sim.run_for(20_000).unwrap();
    let t0 = sim.now();
    let f = create(&mut sim, 0, root(), "late", false, 2);
    let mut waited = 0;
    while !sim.member(1).is_live(&f.uid) && waited < 400 {
        sim.run_for(1000).unwrap();
        waited += 1;
    }
    let took = sim.now() - t0;
    assert!(sim.member(1).is_live(&f.uid), "the change never arrived");
    assert!(took < 60_000, "the change took {took} ms: it waited for the notify time-out");
}

/// An AsyncPoll whose completion is lost with the transport: the client
/// disconnects and starts again, instead of leaving the folder waiting
/// for a completion that will never come.
#[test]
fn a_lost_async_poll_completion_does_not_leave_the_folder_waiting() {
    use crate::engine::session::{AsyncPollResponse, VersionRequestType};
    let db = member::MemberDb::new(FOLDER);
    let mut server = Responder::new(ResponderConfig::default());
    let mut c = PartnerSync::new(SyncConfig::default(), [FOLDER], 0).unwrap();
    let mut now = 0;
    let mut lost = false;
    for _ in 0..200 {
        now += 1000;
        c.on_timer(now, &db);
        let mut inbox = Vec::new();
        while let Some(a) = c.poll_action() {
            if let Action::Send(req) = a {
                let all = matches!(
                    req,
                    Request::RequestVersionVector {
                        change_type: ChangeType::All,
                        request_type: VersionRequestType::Normal,
                        ..
                    }
                );
                if let Ok(Some(r)) = server.handle(&db, req, now) {
                    inbox.push(r);
                }
                if all && !lost {
                    // Force a change so the ALL completion is produced, then lose it.
                    lost = true;
                }
            }
        }
        while let Some(r) = server.poll_response() {
            if lost
                && matches!(
                    &r,
                    Response::AsyncPoll(AsyncPollResponse {
                        vector: Some(_),
                        ..
                    })
                )
            {
                inbox.push(Response::Failed {
                    call: Call::AsyncPoll,
                    folder: None,
                    error: CallError::Transport,
                });
                continue;
            }
            inbox.push(r);
        }
        for r in inbox {
            let _ = c.on_response(r, now, &db);
        }
    }
    assert!(lost, "the test never lost a completion");
    let st = format!("{:?}", c.state(&FOLDER));
    assert!(!st.contains("WaitingAsyncPoll(All)"), "the folder is stuck: {st}");
}

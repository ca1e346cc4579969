//! The checker and the report against hand-made histories: the fixtures (one clean run,
//! one run per violation kind) and small in-memory histories for each rule's edges.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cluster_tests::checker::{check, Verdict, ViolationKind};
use cluster_tests::history::{
    self, Entry, Fault, FaultKind, NodeState, Op, OpKind, Outcome, Reach, RunInfo, ServerEvent,
    ServerEventKind, UserState,
};
use cluster_tests::report;

// ---- fixtures ----

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn fixture(name: &str) -> Vec<Entry> {
    history::read(&fixture_path(name)).expect("fixture parses")
}

const BAD_FIXTURES: [(&str, ViolationKind); 8] = [
    ("lost-write.jsonl", ViolationKind::LostWrite),
    ("resurrected-delete.jsonl", ViolationKind::ResurrectedDelete),
    ("double-server.jsonl", ViolationKind::DoubleServer),
    (
        "revoked-token-accepted.jsonl",
        ViolationKind::RevokedTokenAccepted,
    ),
    ("diverged-node.jsonl", ViolationKind::Diverged),
    (
        "acked-without-quorum.jsonl",
        ViolationKind::AckedWithoutQuorum,
    ),
    (
        "revoked-grant-honoured.jsonl",
        ViolationKind::RevokedGrantHonoured,
    ),
    (
        "added-grant-refused.jsonl",
        ViolationKind::AddedGrantRefused,
    ),
];

#[test]
fn fixtures_are_small_histories_that_start_with_the_run() {
    let names = std::iter::once("clean.jsonl").chain(BAD_FIXTURES.iter().map(|(n, _)| *n));
    for name in names {
        let entries = fixture(name);
        assert!(
            (10..=45).contains(&entries.len()),
            "{name}: {} lines",
            entries.len()
        );
        assert!(
            matches!(entries[0], Entry::Run(_)),
            "{name}: run info first"
        );
        let states = entries
            .iter()
            .filter(|e| matches!(e, Entry::NodeState(_)))
            .count();
        assert_eq!(states, 3, "{name}: a final state per node");
    }
}

#[test]
fn clean_fixture_passes() {
    let verdict = check(&fixture("clean.jsonl"));
    assert!(
        verdict.violations.is_empty(),
        "violations: {:#?}",
        verdict.violations
    );
    assert!(
        verdict.run_problems.is_empty(),
        "run problems: {:?}",
        verdict.run_problems
    );
    assert!(verdict.passed());
    assert!(
        verdict.notes.iter().any(|n| n.contains("pid 2001")),
        "the vanished pid is noted: {:?}",
        verdict.notes
    );
}

#[test]
fn each_bad_fixture_is_flagged_with_exactly_its_kind() {
    for (name, kind) in BAD_FIXTURES {
        let verdict = check(&fixture(name));
        let kinds: Vec<ViolationKind> = verdict.violations.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, vec![kind], "{name}: {:#?}", verdict.violations);
        assert!(
            verdict.run_problems.is_empty(),
            "{name}: {:?}",
            verdict.run_problems
        );
        assert!(!verdict.violations[0].excerpt.is_empty(), "{name}: excerpt");
        assert!(!verdict.passed());
    }
}

#[test]
fn fixture_violations_name_the_culprit() {
    let message = |name: &str| check(&fixture(name)).violations[0].message.clone();
    assert!(message("lost-write.jsonl").contains("\"frank\""));
    assert!(message("resurrected-delete.jsonl").contains("\"dave\""));
    assert!(message("double-server.jsonl").contains("pid 1002"));
    assert!(message("revoked-token-accepted.jsonl").contains("op 16"));
    let quorum = message("acked-without-quorum.jsonl");
    // op 21 came too close to the cut to be judged
    assert!(
        quorum.contains("op 22 ") && !quorum.contains("21"),
        "{quorum}"
    );
    // op 24 began before the removal was acknowledged
    let honoured = message("revoked-grant-honoured.jsonl");
    assert!(
        honoured.contains("op 25 ") && honoured.contains("op 23 ") && !honoured.contains("op 24"),
        "{honoured}"
    );
    // op 22 began before the addition was acknowledged; op 25 came after a removal
    let refused = message("added-grant-refused.jsonl");
    assert!(
        refused.contains("op 23 ") && refused.contains("op 21 ") && !refused.contains("op 25"),
        "{refused}"
    );
    let diverged = message("diverged-node.jsonl");
    assert!(diverged.contains("erin"), "{diverged}");
    assert!(diverged.contains("node 3"), "{diverged}");
}

// ---- in-memory histories ----

fn run_info() -> RunInfo {
    RunInfo {
        seed: 7,
        nodes: 3,
        profile: "unit".into(),
        faults: vec![FaultKind::Kill],
        duration_ms: 1000,
        min_ops_per_sec: 1.0,
        max_unknown_share: 0.5,
        majority_faults: false,
        network: "netns".into(),
    }
}

fn op(id: u64, invoke_ms: u64, complete_ms: u64, outcome: Outcome, kind: OpKind) -> Entry {
    Entry::Op(Op {
        id,
        client: 1,
        node: 1,
        invoke_ms,
        complete_ms,
        outcome,
        status: None,
        kind,
        detail: None,
    })
}

fn create_user(user: &str) -> OpKind {
    OpKind::CreateUser { user: user.into() }
}

fn delete_user(user: &str) -> OpKind {
    OpKind::DeleteUser { user: user.into() }
}

fn create_token(user: &str, token_id: &str) -> OpKind {
    OpKind::CreateToken {
        user: user.into(),
        token_id: Some(token_id.into()),
        secret: Some(format!("secret-{token_id}")),
    }
}

fn revoke_token(user: &str, token_id: &str) -> OpKind {
    OpKind::RevokeToken {
        user: user.into(),
        token_id: token_id.into(),
    }
}

fn check_token(user: &str, token_id: &str, accepted: bool) -> OpKind {
    OpKind::CheckToken {
        user: user.into(),
        token_id: token_id.into(),
        accepted: Some(accepted),
    }
}

/// `users`: name to its token ids.
fn state(node: u32, version: u64, digest: &str, users: &[(&str, &[&str])]) -> Entry {
    Entry::NodeState(NodeState {
        node,
        version,
        digest: digest.into(),
        users: users
            .iter()
            .map(|(name, tokens)| {
                let user = UserState {
                    tokens: tokens.iter().map(|t| t.to_string()).collect(),
                    servers: BTreeMap::new(),
                };
                (name.to_string(), user)
            })
            .collect(),
    })
}

/// The same state on nodes 1 to 3.
fn states(users: &[(&str, &[&str])]) -> Vec<Entry> {
    (1..=3).map(|n| state(n, 10, "d10", users)).collect()
}

fn server(event: ServerEventKind, user: &str, pid: u32) -> Entry {
    Entry::ServerEvent(ServerEvent {
        event,
        user: user.into(),
        server: String::new(),
        pid,
    })
}

/// A history: the run info, the given entries, then filler reads so that the rate rule
/// is met (the rules under test never look at reads).
fn history(entries: Vec<Entry>) -> Vec<Entry> {
    let mut all = vec![Entry::Run(run_info())];
    all.extend(entries);
    for i in 0..10 {
        all.push(op(
            1000 + i,
            10 * i,
            10 * i + 5,
            Outcome::Ok,
            OpKind::ReadUser {
                user: "nobody".into(),
                found: Some(false),
            },
        ));
    }
    all
}

fn kinds(verdict: &Verdict) -> Vec<ViolationKind> {
    verdict.violations.iter().map(|v| v.kind).collect()
}

fn assert_clean(verdict: &Verdict) {
    assert!(verdict.passed(), "{verdict:#?}");
}

// ---- rule 1: lost writes ----

#[test]
fn acknowledged_user_missing_everywhere_is_a_lost_write() {
    let mut entries = vec![op(1, 100, 110, Outcome::Ok, create_user("ann"))];
    entries.extend(states(&[]));
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::LostWrite]);
    assert!(verdict.violations[0].message.contains("node 1, 2, 3"));
}

#[test]
fn acknowledged_user_missing_on_one_node_is_a_lost_write() {
    let mut entries = vec![op(1, 100, 110, Outcome::Ok, create_user("ann"))];
    entries.push(state(1, 10, "d10", &[("ann", &[])]));
    entries.push(state(2, 10, "d10", &[("ann", &[])]));
    entries.push(state(3, 10, "d10", &[("ann", &[])]));
    if let Some(Entry::NodeState(s)) = entries.last_mut() {
        s.users.clear();
    }
    let verdict = check(&history(entries));
    // The node that lost it also diverged from the others.
    assert!(kinds(&verdict).contains(&ViolationKind::LostWrite));
    let lost = &verdict.violations[0];
    assert!(
        lost.message.contains("missing on node 3"),
        "{}",
        lost.message
    );
}

#[test]
fn racing_delete_excuses_a_missing_user() {
    // The delete was invoked before the create completed: it may have been applied last.
    let mut entries = vec![
        op(1, 100, 200, Outcome::Ok, create_user("ann")),
        op(2, 150, 180, Outcome::Ok, delete_user("ann")),
    ];
    entries.extend(states(&[]));
    assert_clean(&check(&history(entries)));
}

#[test]
fn unknown_delete_after_the_create_excuses_a_missing_user() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 300, 900, Outcome::Unknown, delete_user("ann")),
    ];
    entries.extend(states(&[]));
    assert_clean(&check(&history(entries)));
}

#[test]
fn delete_finished_before_the_create_does_not_excuse_a_missing_user() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, delete_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_user("ann")),
    ];
    entries.extend(states(&[]));
    assert_eq!(
        kinds(&check(&history(entries))),
        vec![ViolationKind::LostWrite]
    );
}

#[test]
fn acknowledged_token_missing_is_a_lost_write() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_token("ann", "t1")),
    ];
    entries.extend(states(&[("ann", &[])]));
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::LostWrite]);
    assert!(verdict.violations[0].message.contains("\"t1\""));
}

#[test]
fn any_revocation_attempt_excuses_a_missing_token() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_token("ann", "t1")),
        op(3, 300, 800, Outcome::Failed, revoke_token("ann", "t1")),
    ];
    entries.extend(states(&[("ann", &[])]));
    assert_clean(&check(&history(entries)));
}

// ---- rule 2: resurrected deletes ----

#[test]
fn deleted_user_present_is_a_resurrection() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, delete_user("ann")),
    ];
    entries.extend(states(&[("ann", &[])]));
    assert_eq!(
        kinds(&check(&history(entries))),
        vec![ViolationKind::ResurrectedDelete]
    );
}

#[test]
fn unknown_delete_does_not_make_a_present_user_a_resurrection() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 900, Outcome::Unknown, delete_user("ann")),
    ];
    entries.extend(states(&[("ann", &[])]));
    assert_clean(&check(&history(entries)));
}

#[test]
fn a_create_nobody_heard_back_from_may_apply_after_a_later_delete() {
    // the chaos harness saw it: a create sent to a node cut off from the cluster timed
    // out for the client, and the node carried it out once the cut healed, after the
    // user had been created and deleted again through the other nodes
    let mut entries = vec![
        op(1, 100, 3100, Outcome::Unknown, create_user("ann")),
        op(2, 3200, 3210, Outcome::Ok, create_user("ann")),
        op(3, 3300, 3310, Outcome::Ok, delete_user("ann")),
    ];
    entries.extend(states(&[("ann", &[])]));
    assert_clean(&check(&history(entries)));
    // an answered failure did nothing after its answer
    let mut entries = vec![
        op(1, 100, 3100, Outcome::Failed, create_user("ann")),
        op(2, 3200, 3210, Outcome::Ok, create_user("ann")),
        op(3, 3300, 3310, Outcome::Ok, delete_user("ann")),
    ];
    entries.extend(states(&[("ann", &[])]));
    assert_eq!(
        kinds(&check(&history(entries))),
        vec![ViolationKind::ResurrectedDelete]
    );
    // likewise a delete nobody heard back from may remove a user created later
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 3200, Outcome::Unknown, delete_user("ann")),
        op(3, 3300, 3310, Outcome::Ok, create_user("ann")),
    ];
    entries.extend(states(&[]));
    assert_clean(&check(&history(entries)));
}

#[test]
fn create_racing_or_following_a_delete_excuses_a_present_user() {
    for (invoke, complete) in [(150, 260), (400, 410)] {
        let mut entries = vec![
            op(1, 100, 110, Outcome::Ok, create_user("ann")),
            op(2, 200, 250, Outcome::Ok, delete_user("ann")),
            op(3, invoke, complete, Outcome::Failed, create_user("ann")),
        ];
        entries.extend(states(&[("ann", &[])]));
        assert_clean(&check(&history(entries)));
    }
}

#[test]
fn revoked_token_present_is_a_resurrection() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_token("ann", "t1")),
        op(3, 300, 310, Outcome::Ok, revoke_token("ann", "t1")),
    ];
    entries.extend(states(&[("ann", &["t1"])]));
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::ResurrectedDelete]);
    assert!(verdict.violations[0].message.contains("\"t1\""));
}

// ---- rule 3: revoked tokens accepted ----

fn token_history(check_invoke: u64, accepted: bool) -> Vec<Entry> {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_token("ann", "t1")),
        op(3, 300, 350, Outcome::Ok, revoke_token("ann", "t1")),
        op(
            4,
            check_invoke,
            check_invoke + 5,
            Outcome::Ok,
            check_token("ann", "t1", accepted),
        ),
    ];
    entries.extend(states(&[("ann", &[])]));
    history(entries)
}

#[test]
fn check_invoked_before_the_revoke_completed_may_be_accepted() {
    assert_clean(&check(&token_history(340, true)));
    assert_clean(&check(&token_history(350, true)));
}

#[test]
fn check_invoked_after_the_revoke_completed_must_be_rejected() {
    assert_clean(&check(&token_history(351, false)));
    let verdict = check(&token_history(351, true));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedTokenAccepted]);
    assert_eq!(verdict.violations[0].excerpt.len(), 2, "revoke and check");
}

#[test]
fn token_accepted_after_its_user_was_deleted_is_flagged() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 210, Outcome::Ok, create_token("ann", "t1")),
        op(3, 300, 350, Outcome::Ok, delete_user("ann")),
        op(4, 400, 405, Outcome::Ok, check_token("ann", "t1", true)),
    ];
    entries.extend(states(&[]));
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedTokenAccepted]);
    assert!(verdict.violations[0].message.contains("deleted"));
}

#[test]
fn token_of_a_recreated_user_is_not_ended_by_the_earlier_delete() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, create_user("ann")),
        op(2, 200, 250, Outcome::Ok, delete_user("ann")),
        op(3, 300, 310, Outcome::Ok, create_user("ann")),
        op(4, 400, 410, Outcome::Ok, create_token("ann", "t2")),
        op(5, 500, 505, Outcome::Ok, check_token("ann", "t2", true)),
    ];
    entries.extend(states(&[("ann", &["t2"])]));
    assert_clean(&check(&history(entries)));
}

// ---- rule 9: group grants ----

fn add_to_group(user: &str) -> OpKind {
    OpKind::AddToGroup {
        group: "chaos".into(),
        user: user.into(),
    }
}

fn remove_from_group(user: &str) -> OpKind {
    OpKind::RemoveFromGroup {
        group: "chaos".into(),
        user: user.into(),
    }
}

fn check_grant(user: &str, honoured: bool) -> OpKind {
    OpKind::CheckGrant {
        group: "chaos".into(),
        user: user.into(),
        honoured: Some(honoured),
    }
}

/// ann joins the group (acknowledged at 110), leaves it (invoked at 300, acknowledged at
/// 350), then `extra`; then a check invoked at `check_invoke` that saw `honoured`.
fn grant_history(check_invoke: u64, honoured: bool, extra: Vec<Entry>) -> Vec<Entry> {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, add_to_group("ann")),
        op(2, 300, 350, Outcome::Ok, remove_from_group("ann")),
        op(
            3,
            check_invoke,
            check_invoke + 5,
            Outcome::Ok,
            check_grant("ann", honoured),
        ),
    ];
    entries.extend(extra);
    entries.extend(states(&[("ann", &[])]));
    history(entries)
}

#[test]
fn a_grant_checked_before_the_removal_completed_may_be_honoured() {
    assert_clean(&check(&grant_history(340, true, vec![])));
    assert_clean(&check(&grant_history(350, true, vec![])));
    // and refused, the removal having perhaps taken effect
    assert_clean(&check(&grant_history(340, false, vec![])));
}

#[test]
fn a_grant_honoured_after_the_removal_was_acknowledged_is_flagged() {
    assert_clean(&check(&grant_history(351, false, vec![])));
    let verdict = check(&grant_history(351, true, vec![]));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedGrantHonoured]);
    let v = &verdict.violations[0];
    assert!(
        v.message.contains("op 3 ") && v.message.contains("op 2 "),
        "{}",
        v.message
    );
    assert!(v.message.contains("removal from group \"chaos\""));
    assert_eq!(v.excerpt.len(), 2, "removal and check");
}

#[test]
fn an_addition_that_may_have_followed_the_removal_excuses_an_honoured_grant() {
    let add =
        |id, invoke, complete, outcome| op(id, invoke, complete, outcome, add_to_group("ann"));
    let excusing = [
        // overlapping the removal: it may have taken effect after it
        add(4, 200, 320, Outcome::Ok),
        // acknowledged after the removal, before the check
        add(4, 360, 380, Outcome::Ok),
        // invoked while the check was under way
        add(4, 402, 420, Outcome::Ok),
        // failed answers may still have been applied
        add(4, 360, 380, Outcome::Failed),
        // never answered: it may take effect at any later time
        add(4, 50, 3050, Outcome::Unknown),
    ];
    for a in excusing {
        assert_clean(&check(&grant_history(400, true, vec![a.clone()])));
    }
    let not_excusing = [
        // done before the removal began
        add(4, 200, 290, Outcome::Ok),
        // invoked after the check was answered
        add(4, 406, 420, Outcome::Ok),
    ];
    for a in not_excusing {
        let verdict = check(&grant_history(400, true, vec![a.clone()]));
        assert_eq!(
            kinds(&verdict),
            vec![ViolationKind::RevokedGrantHonoured],
            "{a:?}"
        );
    }
}

#[test]
fn only_the_same_user_and_group_judge_a_grant() {
    let other_user = op(4, 360, 380, Outcome::Ok, add_to_group("bob"));
    let verdict = check(&grant_history(400, true, vec![other_user]));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedGrantHonoured]);
    let other_group = op(
        4,
        360,
        380,
        Outcome::Ok,
        OpKind::AddToGroup {
            group: "physics".into(),
            user: "ann".into(),
        },
    );
    let verdict = check(&grant_history(400, true, vec![other_group]));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedGrantHonoured]);
    // a check of bob after ann's removal is not judged by it
    let mut entries = vec![
        op(1, 300, 350, Outcome::Ok, remove_from_group("ann")),
        op(2, 400, 405, Outcome::Ok, check_grant("bob", true)),
    ];
    entries.extend(states(&[]));
    assert_clean(&check(&history(entries)));
}

#[test]
fn a_grant_honoured_after_the_users_deletion_was_acknowledged_is_flagged() {
    let mut entries = vec![
        op(1, 100, 110, Outcome::Ok, add_to_group("ann")),
        op(2, 300, 350, Outcome::Ok, delete_user("ann")),
        op(3, 400, 405, Outcome::Ok, check_grant("ann", true)),
    ];
    entries.extend(states(&[]));
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::RevokedGrantHonoured]);
    assert!(verdict.violations[0].message.contains("deletion"));
}

#[test]
fn a_grant_refused_after_the_addition_was_acknowledged_is_flagged() {
    let history_of = |check_invoke: u64, extra: Vec<Entry>| {
        let mut entries = vec![
            op(1, 100, 150, Outcome::Ok, add_to_group("ann")),
            op(
                2,
                check_invoke,
                check_invoke + 5,
                Outcome::Ok,
                check_grant("ann", false),
            ),
        ];
        entries.extend(extra);
        entries.extend(states(&[("ann", &[])]));
        history(entries)
    };
    // under way while the addition was: either answer is right
    assert_clean(&check(&history_of(150, vec![])));
    let verdict = check(&history_of(151, vec![]));
    assert_eq!(kinds(&verdict), vec![ViolationKind::AddedGrantRefused]);
    assert!(verdict.violations[0].message.contains("addition to group"));
    // a removal or a deletion racing the check excuses it; one begun after it does not
    let remove = op(3, 120, 200, Outcome::Ok, remove_from_group("ann"));
    assert_clean(&check(&history_of(300, vec![remove])));
    let delete = op(3, 290, 302, Outcome::Unknown, delete_user("ann"));
    assert_clean(&check(&history_of(300, vec![delete])));
    let late = op(3, 306, 310, Outcome::Ok, remove_from_group("ann"));
    assert_eq!(
        kinds(&check(&history_of(300, vec![late]))),
        vec![ViolationKind::AddedGrantRefused]
    );
}

#[test]
fn a_grant_check_without_an_answer_is_not_judged_and_judged_ones_are_counted() {
    let unanswered = op(
        4,
        400,
        3400,
        Outcome::Unknown,
        OpKind::CheckGrant {
            group: "chaos".into(),
            user: "ann".into(),
            honoured: None,
        },
    );
    let verdict = check(&grant_history(400, false, vec![unanswered]));
    assert_clean(&verdict);
    let note = verdict
        .notes
        .iter()
        .find(|n| n.starts_with("grant checks:"))
        .expect("a note on grant checks");
    assert!(
        note.contains("1 answered (0 honoured, 1 refused)")
            && note.contains("0 began after an acknowledged addition")
            && note.contains("1 after such a removal"),
        "{note}"
    );
}

// ---- rule 4: double servers ----

#[test]
fn second_start_while_the_first_runs_is_a_double_server() {
    let entries = vec![
        server(ServerEventKind::Start, "ann", 11),
        server(ServerEventKind::Start, "ann", 12),
        server(ServerEventKind::Exit, "ann", 11),
        server(ServerEventKind::AliveAtEnd, "ann", 12),
    ];
    let mut all = history(entries);
    all.extend(states(&[("ann", &[])]));
    let verdict = check(&all);
    assert_eq!(kinds(&verdict), vec![ViolationKind::DoubleServer]);
    assert_eq!(verdict.violations[0].excerpt.len(), 2, "both starts");
}

#[test]
fn restart_after_an_exit_and_other_users_are_fine() {
    let entries = vec![
        server(ServerEventKind::Start, "ann", 11),
        server(ServerEventKind::Start, "bob", 21),
        server(ServerEventKind::Exit, "ann", 11),
        server(ServerEventKind::Start, "ann", 12),
        server(ServerEventKind::AliveAtEnd, "ann", 12),
        server(ServerEventKind::AliveAtEnd, "bob", 21),
    ];
    let mut all = history(entries);
    all.extend(states(&[("ann", &[]), ("bob", &[])]));
    assert_clean(&check(&all));
}

#[test]
fn named_servers_of_one_user_are_distinct() {
    let mut named = ServerEvent {
        event: ServerEventKind::Start,
        user: "ann".into(),
        server: "gpu".into(),
        pid: 12,
    };
    let mut entries = vec![
        server(ServerEventKind::Start, "ann", 11),
        Entry::ServerEvent(named.clone()),
    ];
    named.event = ServerEventKind::AliveAtEnd;
    entries.push(Entry::ServerEvent(named));
    let mut all = history(entries);
    all.extend(states(&[("ann", &[])]));
    assert_clean(&check(&all));
}

#[test]
fn vanished_pid_is_left_out_with_a_note() {
    let entries = vec![
        server(ServerEventKind::Start, "ann", 11),
        server(ServerEventKind::Start, "ann", 12),
        server(ServerEventKind::Vanished, "ann", 11),
        server(ServerEventKind::AliveAtEnd, "ann", 12),
    ];
    let mut all = history(entries);
    all.extend(states(&[("ann", &[])]));
    let verdict = check(&all);
    assert_clean(&verdict);
    assert!(verdict.notes.iter().any(|n| n.contains("pid 11")));
}

#[test]
fn same_pid_started_twice_is_only_a_note() {
    let entries = vec![
        server(ServerEventKind::Start, "ann", 11),
        server(ServerEventKind::Start, "ann", 11),
        server(ServerEventKind::Exit, "ann", 11),
    ];
    let mut all = history(entries);
    all.extend(states(&[("ann", &[])]));
    let verdict = check(&all);
    assert_clean(&verdict);
    assert!(verdict.notes.iter().any(|n| n.contains("started twice")));
}

// ---- rule 5: reachability ----

#[test]
fn failed_reach_is_unreachable() {
    let mut entries = states(&[("ann", &[])]);
    for (node, ok) in [(1, true), (2, false), (3, true)] {
        entries.push(Entry::Reach(Reach {
            node,
            user: "ann".into(),
            server: String::new(),
            ok,
            detail: (!ok).then(|| "502 Bad Gateway".to_string()),
        }));
    }
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::Unreachable]);
    assert!(verdict.violations[0].message.contains("node 2"));
}

// ---- rule 6: convergence ----

#[test]
fn different_versions_are_not_converged() {
    let entries = vec![
        state(1, 10, "d10", &[]),
        state(2, 9, "d9", &[]),
        state(3, 10, "d10", &[]),
    ];
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::NotConverged]);
    assert!(verdict.violations[0].message.contains("node 2 at 9"));
}

#[test]
fn same_version_different_digest_is_diverged() {
    let entries = vec![
        state(1, 10, "d10", &[]),
        state(2, 10, "d10", &[]),
        state(3, 10, "other", &[]),
    ];
    assert_eq!(
        kinds(&check(&history(entries))),
        vec![ViolationKind::Diverged]
    );
}

#[test]
fn same_version_different_users_is_diverged_naming_them() {
    let entries = vec![
        state(1, 10, "d10", &[("ann", &["t1"])]),
        state(2, 10, "d10", &[("ann", &[])]),
        state(3, 10, "d10", &[("ann", &["t1"])]),
    ];
    let verdict = check(&history(entries));
    assert_eq!(kinds(&verdict), vec![ViolationKind::Diverged]);
    assert!(verdict.violations[0].message.contains("ann"));
}

// ---- rule 8: writes acknowledged without a quorum ----

fn fault(kind: FaultKind, nodes: &[u32], start_ms: u64, end_ms: u64) -> Entry {
    Entry::Fault(Fault {
        id: 1,
        kind,
        nodes: nodes.to_vec(),
        start_ms,
        end_ms,
    })
}

/// Writes acknowledged well inside a 2 s fault, and others that prove nothing.
fn during_a_fault(kind: FaultKind, nodes: &[u32]) -> Vec<Entry> {
    let mut entries = vec![
        fault(kind, nodes, 1000, 3000),
        op(1, 1600, 1700, Outcome::Ok, create_user("ann")),
        op(2, 1800, 1900, Outcome::Ok, create_token("ann", "t1")),
        op(7, 2000, 2100, Outcome::Ok, add_to_group("dee")),
        op(8, 2200, 2300, Outcome::Ok, remove_from_group("dee")),
        // failed, too early, too late, or not a user, token or membership write: not
        // judged
        op(3, 1600, 1700, Outcome::Failed, delete_user("bob")),
        op(4, 1200, 1300, Outcome::Ok, revoke_token("ann", "t0")),
        op(5, 2000, 2800, Outcome::Ok, delete_user("cid")),
        op(6, 1600, 1700, Outcome::Ok, check_token("ann", "t1", true)),
        op(9, 2400, 2410, Outcome::Ok, check_grant("dee", false)),
    ];
    entries.extend(states(&[("ann", &["t1"])]));
    history(entries)
}

#[test]
fn a_write_acknowledged_while_a_majority_is_down_is_flagged() {
    for kind in [
        FaultKind::Kill,
        FaultKind::Hang,
        FaultKind::Partition,
        FaultKind::LeaderIsolation,
    ] {
        let verdict = check(&during_a_fault(kind, &[2, 3]));
        assert_eq!(
            kinds(&verdict),
            vec![ViolationKind::AckedWithoutQuorum],
            "{kind:?}"
        );
        let message = &verdict.violations[0].message;
        assert!(message.contains("op 1, 2, 7, 8 "), "{message}");
        assert!(message.contains("node 2, 3"), "{message}");
        // the fault and the four writes
        assert_eq!(verdict.violations[0].excerpt.len(), 5);
    }
}

#[test]
fn writes_during_a_minority_fault_a_restart_or_a_flap_are_fine() {
    assert_clean(&check(&during_a_fault(FaultKind::Kill, &[3])));
    assert_clean(&check(&during_a_fault(FaultKind::Restart, &[2, 3])));
    assert_clean(&check(&during_a_fault(FaultKind::Flap, &[1, 2])));
}

// ---- run problems ----

#[test]
fn no_node_states_is_a_run_problem() {
    let verdict = check(&history(vec![]));
    assert!(verdict.violations.is_empty());
    assert!(verdict
        .run_problems
        .iter()
        .any(|p| p.contains("no final node states")));
}

#[test]
fn missing_node_state_is_a_run_problem() {
    let entries = vec![state(1, 10, "d10", &[]), state(2, 10, "d10", &[])];
    let verdict = check(&history(entries));
    assert!(verdict.violations.is_empty());
    assert!(verdict.run_problems.iter().any(|p| p.contains("2 of 3")));
}

#[test]
fn too_low_a_rate_is_a_run_problem() {
    let mut entries = history(states(&[]));
    if let Entry::Run(run) = &mut entries[0] {
        run.min_ops_per_sec = 11.0; // 10 ops in 1 s
    }
    let verdict = check(&entries);
    assert!(verdict.violations.is_empty());
    assert_eq!(verdict.run_problems.len(), 1, "{:?}", verdict.run_problems);
    assert!(verdict.run_problems[0].contains("per second"));
}

#[test]
fn too_many_unknowns_is_a_run_problem() {
    let mut entries = history(states(&[]));
    let ops = entries.iter_mut().filter_map(|e| match e {
        Entry::Op(op) => Some(op),
        _ => None,
    });
    for op in ops.take(6) {
        op.outcome = Outcome::Unknown;
    }
    let verdict = check(&entries);
    assert_eq!(verdict.run_problems.len(), 1, "{:?}", verdict.run_problems);
    assert!(verdict.run_problems[0].contains("6 of 10"));
}

#[test]
fn no_ops_or_no_run_info_is_a_run_problem() {
    let mut no_ops = vec![Entry::Run(run_info())];
    no_ops.extend(states(&[]));
    let verdict = check(&no_ops);
    assert!(verdict
        .run_problems
        .iter()
        .any(|p| p.contains("no operations")));

    let no_run: Vec<Entry> = history(states(&[])).into_iter().skip(1).collect();
    let verdict = check(&no_run);
    assert!(verdict
        .run_problems
        .iter()
        .any(|p| p.contains("no run info")));
}

// ---- the report ----

#[test]
fn violation_kinds_serialize_as_their_names() {
    for kind in ViolationKind::ALL {
        let json = serde_json::to_string(&kind).expect("serializes");
        assert_eq!(json, format!("\"{}\"", kind.name()));
    }
}

#[test]
fn report_markdown_counts_violations_and_shows_excerpts() {
    let entries = fixture("revoked-token-accepted.jsonl");
    let verdict = check(&entries);
    let report = report::build(&entries, &verdict);
    let md = report.markdown();
    assert_eq!(md.lines().last(), Some("violations: 1"));
    assert!(md.contains("revoked_token_accepted"));
    assert!(md.contains("```json"));
    let excerpt = &report.violations[0].excerpt;
    assert!(!excerpt.is_empty());
    for line in excerpt {
        assert!(
            md.contains(line.as_str()),
            "excerpt line in markdown: {line}"
        );
    }
    assert!(md.contains("\"id\":16"));

    let clean = fixture("clean.jsonl");
    let md = report::build(&clean, &check(&clean)).markdown();
    assert_eq!(md.lines().last(), Some("violations: 0"));
}

#[test]
fn report_measures_availability_and_recovery() {
    let entries = fixture("clean.jsonl");
    let report = report::build(&entries, &check(&entries));
    assert!(report.passed);
    assert_eq!(report.total_ops, 20);
    assert_eq!(report.ops_per_sec, Some(2.0));
    // a rejected token check is a correct answer: the runner records it as ok
    assert_eq!(report.ops_by_kind["check_token"]["ok"], 3);
    assert_eq!(report.faults_by_kind["kill"], 1);
    assert_eq!(report.faults.len(), 2);
    let a = &report.availability;
    assert_eq!((a.during_faults.ops, a.during_faults.ok), (3, 1));
    assert_eq!((a.overall.ops, a.overall.ok), (20, 18));
    assert_eq!((a.outside_faults.ops, a.outside_faults.ok), (17, 17));
    assert_eq!(report.longest_recovery_ms["kill"], Some(400));
    assert_eq!(report.longest_recovery_ms["partition"], Some(240));
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("json");
    assert_eq!(json["total_ops"], 20);
}

#[test]
fn report_counts_the_group_operations_by_kind() {
    let entries = fixture("revoked-grant-honoured.jsonl");
    let verdict = check(&entries);
    let report = report::build(&entries, &verdict);
    assert_eq!(report.total_ops, 25);
    assert_eq!(report.ops_by_kind["add_to_group"]["ok"], 1);
    assert_eq!(report.ops_by_kind["remove_from_group"]["ok"], 1);
    assert_eq!(report.ops_by_kind["check_grant"]["ok"], 3);
    let md = report.markdown();
    assert!(md.contains("| check_grant | 3 | 0 | 0 | 3 |"), "{md}");
    assert!(md.contains("revoked_grant_honoured"));
    // and how many checks the rule judged
    assert!(
        md.contains("grant checks: 3 answered (3 honoured, 0 refused)"),
        "{md}"
    );
}

#[test]
fn fault_without_a_later_ok_op_is_not_recovered() {
    let mut entries = history(states(&[]));
    entries.push(Entry::Fault(Fault {
        id: 1,
        kind: FaultKind::Kill,
        nodes: vec![1],
        start_ms: 100,
        end_ms: 200,
    }));
    // node 1 was asked after the fault, and failed, until the workload ended long after
    entries.push(op(
        50,
        15_300,
        15_310,
        Outcome::Failed,
        OpKind::ReadUser {
            user: "nobody".into(),
            found: None,
        },
    ));
    let report = report::build(&entries, &check(&entries));
    assert_eq!(report.recovery[0].recovery_ms, None);
    assert_eq!(report.longest_recovery_ms["kill"], None);
    assert!(report.markdown().contains("not recovered"));
}

#[test]
fn report_is_written_as_markdown_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("nested").join("run");
    let entries = fixture("diverged-node.jsonl");
    let report = report::build(&entries, &check(&entries));
    let (md, json) = report::write(&out, &report).expect("written");
    assert_eq!(md, out.join("report.md"));
    assert_eq!(json, out.join("report.json"));
    let md = std::fs::read_to_string(md).expect("md");
    assert!(md.ends_with("violations: 1\n"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("parses");
    assert_eq!(json["violations"][0]["kind"], "diverged");
}

#[test]
fn fault_ending_with_the_workload_is_not_judged_for_recovery() {
    let mut entries = history(states(&[]));
    entries.push(Entry::Fault(Fault {
        id: 1,
        kind: FaultKind::Partition,
        nodes: vec![1],
        start_ms: 5_000,
        end_ms: 6_000,
    }));
    // one operation after it, which failed: the workload ended before a recovery could
    // be seen
    entries.push(op(
        50,
        6_100,
        6_110,
        Outcome::Failed,
        OpKind::ReadUser {
            user: "nobody".into(),
            found: None,
        },
    ));
    let report = report::build(&entries, &check(&entries));
    assert!(!report.recovery[0].judged);
    assert_eq!(report.longest_recovery_ms.get("partition"), None);
    assert!(report.markdown().contains("cut short"));
}

#[test]
fn recovery_is_judged_only_until_the_next_fault() {
    let mut entries = history(states(&[]));
    let partition = |id, start_ms, end_ms| {
        Entry::Fault(Fault {
            id,
            kind: FaultKind::Partition,
            nodes: vec![1],
            start_ms,
            end_ms,
        })
    };
    entries.push(partition(1, 500, 1_000));
    entries.push(partition(2, 2_000, 3_000));
    let read = |id, at| {
        op(
            id,
            at,
            at + 10,
            Outcome::Ok,
            OpKind::ReadUser {
                user: "nobody".into(),
                found: Some(false),
            },
        )
    };
    // node 1's first success after fault 1 came after fault 2 had begun
    entries.push(read(60, 3_200));
    let report = report::build(&entries, &check(&entries));
    assert!(!report.recovery[0].judged, "{:?}", report.recovery[0]);
    assert!(report.recovery[1].judged);
    assert_eq!(report.recovery[1].recovery_ms, Some(210));
    assert_eq!(report.longest_recovery_ms["partition"], Some(210));
}

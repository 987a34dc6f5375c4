//! Budgets: a session that reaches a limit of its budget (the profile's, or its own from
//! create) finishes its turn, hears `budget_exceeded`, and refuses messages until an admin
//! raises the budget. A scripted turn costs 15 tokens (10 in, 5 out) and $0.000175.

use agent_runtime::auth::Principal;
use agent_runtime::error::ErrorCode;
use agent_runtime::runtime::{CreateSession, MessageContent};
use agent_runtime_api::{Budget, EventKind, SessionRecord, SessionStatus};
use serde_json::json;

use crate::harness::{Harness, data};

fn budget(cost: Option<f64>, tokens: Option<u64>, turns: Option<u64>) -> Budget {
    Budget {
        max_cost_usd: cost,
        max_tokens: tokens,
        max_turns: turns,
    }
}

async fn create(h: &Harness, agent_type: &str, budget: Option<Budget>) -> SessionRecord {
    let request = CreateSession {
        agent_type: agent_type.into(),
        budget,
        ..Default::default()
    };
    h.manager.create(&h.alice, request).await.expect("create")
}

async fn send(h: &Harness, principal: &Principal, session_id: &str) -> Result<u64, ErrorCode> {
    h.manager
        .send_message(
            principal,
            session_id,
            MessageContent::new(json!("reply more")).unwrap(),
            None,
        )
        .await
        .map(|accepted| accepted.seq)
        .map_err(|error| error.code)
}

/// The `budget_exceeded` error events of the session's log, with what came just before.
async fn budget_events(h: &Harness, session_id: &str) -> Vec<(serde_json::Value, u64)> {
    let log = h.log(session_id).await;
    log.iter()
        .filter(|e| e.kind == EventKind::Error && data(e)["code"] == "budget_exceeded")
        .map(|e| (data(e), e.seq))
        .collect()
}

#[tokio::test]
async fn the_profiles_turn_limit_ends_after_the_turn_that_reached_it() {
    let h = Harness::start().await;
    let session = create(&h, "budgeted", None).await;
    assert_eq!(session.budget, budget(Some(1.0), Some(1000), Some(2)));
    h.turn(&session.id, "reply one").await;
    h.turn(&session.id, "reply two").await;

    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.usage.turns, 2);
    assert_eq!(
        record.status,
        SessionStatus::Idle,
        "the turn finished as usual"
    );
    let exceeded = budget_events(&h, &session.id).await;
    assert_eq!(exceeded.len(), 1, "said once: {exceeded:?}");
    assert_eq!(exceeded[0].0["fatal"], false);
    assert!(
        exceeded[0].0["message"]
            .as_str()
            .unwrap()
            .contains("maxTurns")
    );
    let log = h.log(&session.id).await;
    let result = log
        .iter()
        .rposition(|e| e.kind == EventKind::Agent && data(e)["type"] == "result")
        .unwrap();
    assert!(exceeded[0].1 > log[result].seq, "after the turn's result");

    let last_seq = record.last_seq;
    assert_eq!(
        send(&h, &h.alice, &session.id).await,
        Err(ErrorCode::BudgetExceeded)
    );
    let after = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(
        after.last_seq, last_seq,
        "a refused message leaves no event"
    );
    assert_eq!(after.usage.turns, 2);
}

#[tokio::test]
async fn token_and_cost_limits_stop_a_session_at_the_turn_that_reaches_them() {
    let h = Harness::start().await;
    // One turn stays under each limit; the second reaches it (30 tokens, $0.00035).
    for (limited, name) in [
        (budget(None, Some(30), None), "maxTokens"),
        (budget(Some(0.0003), None, None), "maxCostUsd"),
    ] {
        let session = create(&h, "tester", Some(limited)).await;
        assert_eq!(session.budget, limited);
        h.turn(&session.id, "reply one").await;
        assert_eq!(budget_events(&h, &session.id).await.len(), 0, "{name}");
        assert!(send(&h, &h.alice, &session.id).await.is_ok());
        h.turn(&session.id, "reply two").await;
        let exceeded = budget_events(&h, &session.id).await;
        assert_eq!(exceeded.len(), 1, "{name}");
        assert!(exceeded[0].0["message"].as_str().unwrap().contains(name));
        assert_eq!(
            send(&h, &h.alice, &session.id).await,
            Err(ErrorCode::BudgetExceeded)
        );
    }
}

#[tokio::test]
async fn a_session_budget_may_tighten_the_profiles_but_not_exceed_it() {
    let h = Harness::start().await;
    for (above, field) in [
        (budget(None, None, Some(3)), "budget.maxTurns"),
        (budget(None, Some(1001), None), "budget.maxTokens"),
        (budget(Some(1.01), None, None), "budget.maxCostUsd"),
    ] {
        let request = CreateSession {
            agent_type: "budgeted".into(),
            budget: Some(above),
            ..Default::default()
        };
        let error = h.manager.create(&h.alice, request).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{error}");
        assert!(error.message.starts_with(field), "{error}");
    }
    let listed = h.manager.list(&h.alice, Default::default()).await.unwrap();
    assert!(
        listed.sessions.is_empty(),
        "a refused create stores nothing"
    );

    let tight = create(&h, "budgeted", Some(budget(None, None, Some(1)))).await;
    assert_eq!(tight.budget, budget(Some(1.0), Some(1000), Some(1)));
    h.turn(&tight.id, "reply one").await;
    assert_eq!(
        send(&h, &h.alice, &tight.id).await,
        Err(ErrorCode::BudgetExceeded)
    );
}

#[tokio::test]
async fn messages_queued_when_the_budget_runs_out_are_dropped_and_named() {
    let h = Harness::start().await;
    let session = create(&h, "tester", Some(budget(None, None, Some(1)))).await;
    let mut watch = h.watch();
    let first = h.say(&session.id, "sleep 300").await;
    // Accepted while the first turn runs: the budget is not reached yet.
    let queued = h
        .manager
        .send_message(
            &h.alice,
            &session.id,
            MessageContent::new(json!("reply late")).unwrap(),
            Some("queued-1".into()),
        )
        .await
        .unwrap();
    assert!(queued.seq > first);
    watch
        .until(&session.id, |e| {
            e.kind == EventKind::Error && data(e)["code"] == "messages_dropped"
        })
        .await;
    let log = h.log(&session.id).await;
    let dropped = log
        .iter()
        .find(|e| e.kind == EventKind::Error && data(e)["code"] == "messages_dropped")
        .unwrap();
    let message = data(dropped)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("queued-1") && message.contains("budget"),
        "{message}"
    );
    let results = log
        .iter()
        .filter(|e| e.kind == EventKind::Agent && data(e)["type"] == "result")
        .count();
    assert_eq!(results, 1, "the queued message started no turn");
    watch.status(&session.id, "idle").await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.usage.turns, 1);
}

#[tokio::test]
async fn only_an_admin_raises_a_budget_live_or_stopped() {
    let h = Harness::start().await;
    let admin = Principal::admin("ops");
    let session = create(&h, "budgeted", Some(budget(None, None, Some(1)))).await;
    h.turn(&session.id, "reply one").await;
    assert_eq!(
        send(&h, &h.alice, &session.id).await,
        Err(ErrorCode::BudgetExceeded)
    );

    let raised = budget(None, None, Some(2));
    let own = h.manager.set_budget(&h.alice, &session.id, raised).await;
    assert_eq!(own.unwrap_err().code, ErrorCode::Forbidden);
    let others = h.manager.set_budget(&h.bob, &session.id, raised).await;
    assert_eq!(others.unwrap_err().code, ErrorCode::NotFound);
    let missing = h
        .manager
        .set_budget(&admin, "no-such-session", raised)
        .await;
    assert_eq!(missing.unwrap_err().code, ErrorCode::NotFound);

    // Raised while live: above the profile's own limit of two turns too, and unlimited
    // cost and tokens, as the admin says.
    let record = h
        .manager
        .set_budget(&admin, &session.id, raised)
        .await
        .unwrap();
    assert_eq!(record.budget, raised);
    assert!(send(&h, &h.alice, &session.id).await.is_ok());
    h.turn(&session.id, "reply two").await;
    assert_eq!(budget_events(&h, &session.id).await.len(), 2);
    assert_eq!(
        send(&h, &h.alice, &session.id).await,
        Err(ErrorCode::BudgetExceeded)
    );

    // Stopped over budget: a message is refused without resuming the session.
    h.manager.stop(&h.alice, &session.id).await.unwrap();
    assert_eq!(
        send(&h, &h.alice, &session.id).await,
        Err(ErrorCode::BudgetExceeded)
    );
    let stopped = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(stopped.status, SessionStatus::Stopped);
    assert_eq!(stopped.budget, raised, "the budget is kept in the record");

    let more = budget(None, None, Some(5));
    let record = h
        .manager
        .set_budget(&admin, &session.id, more)
        .await
        .unwrap();
    assert_eq!(record.status, SessionStatus::Stopped);
    assert_eq!(
        h.manager.get(&h.alice, &session.id).await.unwrap().budget,
        more
    );
    // The message resumes the session, which keeps its raised budget.
    h.turn(&session.id, "reply three").await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!((record.usage.turns, record.budget), (3, more));
}

/// Lines of another conversation, or after the turn ended, claim results with absurd
/// costs: they count for nothing, so a turn and cost budget is judged by the turns the
/// runtime ran.
#[tokio::test]
async fn forged_result_lines_do_not_use_up_a_budget() {
    let h = Harness::start().await;
    let session = create(&h, "tester", Some(budget(Some(0.01), None, Some(2)))).await;
    let mut watch = h.watch();
    let seq = h.say(&session.id, "forge").await;
    watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Agent && data(e)["result"] == "forged"
        })
        .await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.usage.turns, 1, "one turn counted");
    assert!(record.usage.cost_usd < 0.01, "{:?}", record.usage);
    assert_eq!(budget_events(&h, &session.id).await.len(), 0);
    // The budget's second turn is still there, and it is the last.
    h.turn(&session.id, "reply two").await;
    assert_eq!(budget_events(&h, &session.id).await.len(), 1);
    assert_eq!(
        send(&h, &h.alice, &session.id).await,
        Err(ErrorCode::BudgetExceeded)
    );
}

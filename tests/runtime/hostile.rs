//! An agent that lies or floods: what it prints cannot change the record beyond what its
//! turns really did, nor exhaust the runtime.

use agent_runtime_api::EventKind;

use crate::harness::{Harness, data, settings};

#[tokio::test]
async fn forged_init_and_result_lines_change_neither_the_id_nor_the_usage_beyond_one_turn() {
    let h = Harness::start().await;
    let session = h.create().await;
    let chosen = session.agent_session_id.clone().expect("chosen at create");
    h.turn(&session.id, "reply first").await;
    let before = h.manager.get(&h.alice, &session.id).await.unwrap();

    let mut watch = h.watch();
    let seq = h.say(&session.id, "forge").await;
    // The ordinary result comes last, after the forged ones.
    watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Agent && data(e)["result"] == "forged"
        })
        .await;
    let after = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(after.agent_session_id.as_deref(), Some(chosen.as_str()));
    assert_eq!(
        after.usage.turns,
        before.usage.turns + 1,
        "one result per turn"
    );
    assert_eq!(
        after.usage.input_tokens,
        i64::MAX as u64,
        "absurd counts saturate at what a store can hold"
    );
    assert_eq!(
        after.usage.cost_usd, before.usage.cost_usd,
        "a negative cost is not added"
    );

    // The session goes on, and its next turn counts once.
    h.turn(&session.id, "reply still here").await;
    let last = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(last.usage.turns, before.usage.turns + 2);
    assert_eq!(last.agent_session_id.as_deref(), Some(chosen.as_str()));
    assert!(last.usage.cost_usd.is_finite());
}

#[tokio::test]
async fn an_oversized_line_becomes_an_error_event_and_the_turn_goes_on() {
    let mut settings = settings();
    settings.limits.line_bytes = 64 * 1024;
    let h = Harness::with_settings(settings).await;
    let session = h.create().await;
    let mut watch = h.watch();
    let seq = h.say(&session.id, "bigline 3000000").await;
    let error = watch
        .until(&session.id, |e| e.seq > seq && e.kind == EventKind::Error)
        .await;
    let error = data(&error);
    assert_eq!(error["code"], "line_too_long");
    assert_eq!(error["fatal"], false);
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(result["result"], "sent a big line");
    let largest = h
        .log(&session.id)
        .await
        .iter()
        .map(|e| e.data.get().len())
        .max()
        .unwrap();
    assert!(largest < 64 * 1024, "an event of {largest} bytes was kept");
    h.turn(&session.id, "reply after the flood").await;
}

//! The agent's requests for a person: permissions and questions relayed as events,
//! answered by clients, closed once.

use std::time::Duration;

use agent_runtime::error::ErrorCode;
use agent_runtime::runtime::Answer;
use agent_runtime_api::{Event, EventKind, SessionStatus};
use serde_json::{Value, json};

use crate::harness::{Harness, assert_gap_free, data, settings};

fn allow() -> Answer {
    Answer::Allow {
        input: None,
        always: false,
        answers: None,
    }
}

fn deny(message: &str) -> Answer {
    Answer::Deny {
        message: Some(message.into()),
    }
}

/// The `requestId` of a request event.
fn request_id(event: &Event) -> String {
    data(event)["requestId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tool_call_waits_for_a_person_and_the_first_answer_wins() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    let seq = h
        .say(
            &session.id,
            r#"ask Write {"file_path":"approved.txt","content":"yes"}"#,
        )
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    let asked = data(&request);
    assert_eq!(asked["tool"], "Write");
    assert_eq!(asked["input"]["file_path"], "approved.txt");
    assert!(asked["toolUseId"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(asked["suggestions"][0]["mode"], "acceptEdits");
    assert_eq!(asked["description"], "Write");
    let id = request_id(&request);

    // The session waits for a person, and says what for.
    watch.status(&session.id, "waiting").await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Waiting);
    let pending = h.manager.pending(&session.id);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, request.seq);

    // Another principal cannot tell the session exists; unknown ids and bad answers are
    // refused without closing the request.
    let error = h
        .manager
        .answer(&h.bob, &session.id, &id, allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::NotFound);
    let error = h
        .manager
        .answer(&h.alice, &session.id, "no-such-request", allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestNotFound);
    let questions_only = Answer::Allow {
        input: None,
        always: false,
        answers: Some([("q".to_owned(), "a".to_owned())].into()),
    };
    let error = h
        .manager
        .answer(&h.alice, &session.id, &id, questions_only)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert_eq!(h.manager.pending(&session.id).len(), 1);
    let gauge = "agent_runtime_approvals_pending 1";
    assert!(h.manager.metrics().render().contains(gauge), "{gauge}");

    // The first valid answer wins; the next one is told the request is closed.
    let answered = h
        .manager
        .answer(&h.alice, &session.id, &id, allow())
        .await
        .unwrap();
    let error = h
        .manager
        .answer(&h.alice, &session.id, &id, deny("too late"))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestClosed);

    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(
        result["result"],
        "TOOL RESULT SEEN: File created successfully at: approved.txt"
    );
    assert_eq!(h.file(&session.id, "approved.txt").await, b"yes");
    assert!(h.manager.pending(&session.id).is_empty());
    let gauge = "agent_runtime_approvals_pending 0";
    assert!(h.manager.metrics().render().contains(gauge), "{gauge}");

    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    let answer = log.iter().find(|e| e.seq == answered).unwrap();
    assert_eq!(answer.kind, EventKind::Answer);
    assert_eq!(
        data(answer),
        json!({ "requestId": id, "outcome": "allow", "by": "alice" })
    );
    assert_eq!(
        log.iter().filter(|e| e.kind == EventKind::Answer).count(),
        1,
        "one answer closes a request"
    );
    let statuses: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| data(e)["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        ["starting", "idle", "running", "waiting", "running", "idle"]
    );
    // The request is an event of its own, not an agent line as well.
    assert!(
        !log.iter()
            .any(|e| e.kind == EventKind::Agent && data(e)["type"] == "control_request")
    );
}

#[tokio::test]
async fn a_denial_reaches_the_agent_and_always_allows_the_tool_for_the_session() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();

    let seq = h
        .say(
            &session.id,
            r#"ask Write {"file_path":"denied.txt","content":"no"}"#,
        )
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    h.manager
        .answer(
            &h.alice,
            &session.id,
            &request_id(&request),
            deny("not in this folder"),
        )
        .await
        .unwrap();
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(result["result"], "TOOL RESULT SEEN: not in this folder");
    let files = h.manager.files(&h.alice, &session.id).await.unwrap();
    assert!(!files.iter().any(|f| f.path == "denied.txt"));

    // Allowed with an edited input, and for the rest of the session.
    let seq = h
        .say(
            &session.id,
            r#"ask Write {"file_path":"first.txt","content":"draft"}"#,
        )
        .await;
    let request = watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Permission
        })
        .await;
    let edited = json!({ "file_path": "edited.txt", "content": "final" });
    let answered = h
        .manager
        .answer(
            &h.alice,
            &session.id,
            &request_id(&request),
            Answer::Allow {
                input: edited.as_object().cloned(),
                always: true,
                answers: None,
            },
        )
        .await
        .unwrap();
    watch.result_after(&session.id, seq).await;
    assert_eq!(h.file(&session.id, "edited.txt").await, b"final");
    let log = h.log(&session.id).await;
    let answer = log.iter().find(|e| e.seq == answered).unwrap();
    assert_eq!(
        data(answer),
        json!({ "requestId": request_id(&request), "outcome": "allow", "by": "alice",
                "input": edited, "always": true })
    );

    // The next Write is not asked about.
    let seq = h
        .say(
            &session.id,
            r#"ask Write {"file_path":"second.txt","content":"again"}"#,
        )
        .await;
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(
        result["result"],
        "TOOL RESULT SEEN: File created successfully at: second.txt"
    );
    let log = h.log(&session.id).await;
    assert_eq!(
        log.iter()
            .filter(|e| e.kind == EventKind::Permission)
            .count(),
        2
    );
    let denial = log
        .iter()
        .filter(|e| e.kind == EventKind::Answer)
        .map(data)
        .next()
        .unwrap();
    assert_eq!(denial["outcome"], "deny");
    assert_eq!(denial["message"], "not in this folder");
}

#[tokio::test]
async fn a_question_is_answered_with_the_chosen_options() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    let questions = json!([
        { "question": "Which color?", "header": "Color", "multiSelect": false,
          "options": [{ "label": "Red", "description": "warm" }, { "label": "Blue", "description": "cool" }] }
    ]);
    let seq = h
        .say(
            &session.id,
            &format!("ask AskUserQuestion {}", json!({ "questions": questions })),
        )
        .await;
    let request = watch.next_of(&session.id, EventKind::Question).await;
    let asked = data(&request);
    assert_eq!(asked["questions"], questions);
    assert!(asked.get("input").is_none() && asked.get("tool").is_none());
    let id = request_id(&request);

    let missing = Answer::Allow {
        input: None,
        always: false,
        answers: Some([("Which size?".to_owned(), "L".to_owned())].into()),
    };
    let error = h
        .manager
        .answer(&h.alice, &session.id, &id, missing)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    let answers = [("Which color?".to_owned(), "Blue".to_owned())].into();
    h.manager
        .answer(
            &h.alice,
            &session.id,
            &id,
            Answer::Allow {
                input: None,
                always: false,
                answers: Some(answers),
            },
        )
        .await
        .unwrap();
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(
        result["result"],
        "TOOL RESULT SEEN: Your questions have been answered: \"Which color?\"=\"Blue\". \
         You can now continue with these answers in mind."
    );
    let log = h.log(&session.id).await;
    let answer = log.iter().find(|e| e.kind == EventKind::Answer).unwrap();
    assert_eq!(data(answer)["answers"], json!({ "Which color?": "Blue" }));
}

#[tokio::test]
async fn an_interrupt_withdraws_the_request_and_a_waiting_session_is_not_idle() {
    let mut settings = settings();
    settings.idle_timeout = Duration::from_millis(400);
    let h = Harness::with_settings(settings).await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    let seq = h
        .say(&session.id, r#"ask Bash {"command":"rm -rf build"}"#)
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    watch.status(&session.id, "waiting").await;

    // Long past the idle timeout, the session still waits for its person.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Waiting);

    h.manager.interrupt(&h.alice, &session.id).await.unwrap();
    let withdrawn = watch.next_of(&session.id, EventKind::Answer).await;
    assert_eq!(data(&withdrawn)["outcome"], "withdrawn");
    assert!(data(&withdrawn).get("by").is_none());
    watch.result_after(&session.id, seq).await;
    watch.status(&session.id, "idle").await;
    assert!(h.manager.pending(&session.id).is_empty());
    let error = h
        .manager
        .answer(&h.alice, &session.id, &request_id(&request), allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestClosed);
}

#[tokio::test]
async fn a_profile_that_does_not_ask_denies_the_agents_requests() {
    let h = Harness::start().await;
    let session = h.create().await;
    let result = h
        .turn(
            &session.id,
            r#"ask Write {"file_path":"x.txt","content":"x"}"#,
        )
        .await;
    assert_eq!(
        result["result"],
        "TOOL RESULT SEEN: This tool is not allowed by the session's profile."
    );
    let log = h.log(&session.id).await;
    assert!(!log.iter().any(|e| matches!(
        e.kind,
        EventKind::Permission | EventKind::Question | EventKind::Answer
    )));
    let statuses: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| data(e)["status"].clone())
        .collect();
    assert_eq!(statuses, ["starting", "idle", "running", "idle"]);
    // A stopped session has no agent waiting.
    h.manager.stop(&h.alice, &session.id).await.unwrap();
    let error = h
        .manager
        .answer(&h.alice, &session.id, "r-1", allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestNotFound);
}

#[tokio::test]
async fn stopping_a_waiting_session_expires_its_request_and_the_next_life_hears_of_it() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    h.say(&session.id, r#"ask Bash {"command":"make deploy"}"#)
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    watch.status(&session.id, "waiting").await;

    let started = std::time::Instant::now();
    let stopped = h.manager.stop(&h.alice, &session.id).await.unwrap();
    assert_eq!(stopped.status, SessionStatus::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the agent did not wait out its grace: {:?}",
        started.elapsed()
    );
    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    let answers: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == EventKind::Answer)
        .map(data)
        .collect();
    assert_eq!(
        answers,
        [
            json!({ "requestId": request_id(&request), "outcome": "expired", "reason": "stopped",
                 "message": "The session was stopped before anyone answered." })
        ]
    );
    let statuses: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| data(e)["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            "starting", "idle", "running", "waiting", "stopping", "stopped"
        ]
    );
    assert!(h.manager.pending(&session.id).is_empty());
    let error = h
        .manager
        .answer(&h.alice, &session.id, &request_id(&request), allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestNotFound);

    // The first message of the next life carries the runtime's note before the client's
    // words (the scripted agent echoes what it got); the one after it does not.
    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "hello again").await;
    let echoed = result["result"].as_str().unwrap();
    assert!(
        echoed.starts_with("echo: Note from the host, not from the user:"),
        "{echoed}"
    );
    assert!(
        echoed.contains(r#"the tool call Bash with input {"command":"make deploy"}"#)
            && echoed.contains("(the session was stopped)")
            && echoed.ends_with("\nhello again"),
        "{echoed}"
    );
    let result = h.turn(&session.id, "and again").await;
    assert_eq!(result["result"], "echo: and again");
    // A resume without news tells the agent nothing.
    h.manager.stop(&h.alice, &session.id).await.unwrap();
    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "quiet").await;
    assert_eq!(result["result"], "echo: quiet");
}

#[tokio::test]
async fn a_shutdown_expires_what_waits() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    h.say(&session.id, r#"ask AskUserQuestion {"questions":[{"question":"Go?","header":"Go","multiSelect":false,"options":[]}]}"#)
        .await;
    let request = watch.next_of(&session.id, EventKind::Question).await;
    watch.status(&session.id, "waiting").await;
    h.manager.shutdown().await;
    let log = h.log(&session.id).await;
    let answers: Vec<Value> = log
        .iter()
        .filter(|e| e.kind == EventKind::Answer)
        .map(data)
        .collect();
    assert_eq!(
        answers,
        [
            json!({ "requestId": request_id(&request), "outcome": "expired", "reason": "shutdown",
                 "message": "The runtime shut down before anyone answered." })
        ]
    );
    assert_eq!(data(log.last().unwrap())["reason"], "shutdown");
    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "back").await;
    let echoed = result["result"].as_str().unwrap();
    assert!(
        echoed.contains(r#"your questions "Go?""#) && echoed.contains("(the host shut down)"),
        "{echoed}"
    );
}

#[tokio::test]
async fn an_unanswered_request_is_denied_at_its_deadline_and_the_turn_goes_on() {
    let mut settings = settings();
    settings.idle_timeout = Duration::from_millis(300);
    let h = Harness::with_settings(settings).await;
    let session = h.create_of("hurried").await;
    let mut watch = h.watch();
    let seq = h
        .say(
            &session.id,
            r#"ask Write {"file_path":"late.txt","content":"x"}"#,
        )
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    let expires_at: chrono::DateTime<chrono::Utc> = data(&request)["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ahead = expires_at - request.at;
    assert!(
        ahead >= chrono::Duration::milliseconds(990)
            && ahead <= chrono::Duration::milliseconds(1100),
        "{ahead}"
    );
    assert_eq!(
        data(&h.manager.pending(&session.id)[0])["expiresAt"],
        data(&request)["expiresAt"]
    );

    let expired = watch.next_of(&session.id, EventKind::Answer).await;
    assert_eq!(
        data(&expired),
        json!({ "requestId": request_id(&request), "outcome": "expired", "reason": "timeout",
                "message": "No one answered this request within 1s; it was denied. Go on without it." })
    );
    assert!(expired.at >= expires_at, "not before its deadline");
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(
        result["result"],
        "TOOL RESULT SEEN: No one answered this request within 1s; it was denied. Go on without it."
    );
    let error = h
        .manager
        .answer(&h.alice, &session.id, &request_id(&request), allow())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestClosed);
    let files = h.manager.files(&h.alice, &session.id).await.unwrap();
    assert!(!files.iter().any(|f| f.path == "late.txt"));
    let statuses: Vec<Value> = h
        .log(&session.id)
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| data(e)["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        ["starting", "idle", "running", "waiting", "running", "idle"],
        "the waiting session outlived its idle timeout"
    );
    // The agent was told at the time, so its next life is not told again.
    h.manager.stop(&h.alice, &session.id).await.unwrap();
    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "next").await;
    assert_eq!(result["result"], "echo: next");
}

#[tokio::test]
async fn an_agent_that_exits_while_it_waits_expires_its_request() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();
    h.say(&session.id, r#"askcrash Bash {"command":"make deploy"}"#)
        .await;
    let request = watch.next_of(&session.id, EventKind::Permission).await;
    let expired = watch.next_of(&session.id, EventKind::Answer).await;
    assert_eq!(
        data(&expired),
        json!({ "requestId": request_id(&request), "outcome": "expired", "reason": "agent_crashed",
                "message": "The agent exited before anyone answered." })
    );
    watch.status(&session.id, "failed").await;
    assert!(h.manager.pending(&session.id).is_empty());
    let log = h.log(&session.id).await;
    assert_gap_free(&log);
    let kinds: Vec<EventKind> = log
        .iter()
        .skip_while(|e| e.kind != EventKind::Permission)
        .map(|e| e.kind)
        .filter(|k| *k != EventKind::Agent)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Permission,
            EventKind::Status, // waiting
            EventKind::Error,  // agent_crashed
            EventKind::Answer,
            EventKind::Status, // failed
        ]
    );
    h.manager.resume(&h.alice, &session.id).await.unwrap();
    let result = h.turn(&session.id, "back").await;
    let echoed = result["result"].as_str().unwrap();
    assert!(
        echoed.contains("the tool call Bash") && echoed.contains("(the agent process exited)"),
        "{echoed}"
    );
}

#[tokio::test]
async fn parallel_requests_wait_together_and_a_runaway_agent_is_bounded() {
    let h = Harness::start().await;
    let session = h.create_asking().await;
    let mut watch = h.watch();

    // Three at once: the session waits until the last is answered, in any order.
    let seq = h.say(&session.id, "askmany 3").await;
    let mut asked = Vec::new();
    while asked.len() < 3 {
        let event = watch.next_of(&session.id, EventKind::Permission).await;
        asked.push(request_id(&event));
    }
    // The first request made the session wait (its status event came before the others).
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Waiting);
    assert_eq!(h.manager.pending(&session.id).len(), 3);
    h.manager
        .answer(&h.alice, &session.id, &asked[2], deny("no"))
        .await
        .unwrap();
    h.manager
        .answer(&h.alice, &session.id, &asked[0], allow())
        .await
        .unwrap();
    let record = h.manager.get(&h.alice, &session.id).await.unwrap();
    assert_eq!(record.status, SessionStatus::Waiting, "one still waits");
    assert_eq!(h.manager.pending(&session.id).len(), 1);
    h.manager
        .answer(&h.alice, &session.id, &asked[1], allow())
        .await
        .unwrap();
    let result = watch.result_after(&session.id, seq).await;
    assert_eq!(result["result"], "allow,allow,deny");

    // Past 64 waiting requests, the agent's next one is denied without asking anyone.
    let seq = h.say(&session.id, "askmany 65").await;
    // Answers wait until the runtime has read all 65 requests: an answer before the 65th
    // would make room for it.
    watch
        .until(&session.id, |e| {
            e.seq > seq && e.kind == EventKind::Agent && e.data.get().contains("asked 65")
        })
        .await;
    let asked: Vec<String> = h
        .manager
        .pending(&session.id)
        .iter()
        .map(request_id)
        .collect();
    assert_eq!(asked.len(), 64);
    for id in &asked {
        h.manager
            .answer(&h.alice, &session.id, id, allow())
            .await
            .unwrap();
    }
    let result = watch.result_after(&session.id, seq).await;
    let behaviors: Vec<&str> = result["result"].as_str().unwrap().split(',').collect();
    assert_eq!(behaviors.len(), 65);
    assert_eq!(behaviors[64], "deny", "the 65th was refused");
    assert!(behaviors[..64].iter().all(|b| *b == "allow"));
    let log = h.log(&session.id).await;
    assert_eq!(
        log.iter()
            .filter(|e| e.kind == EventKind::Permission)
            .count(),
        3 + 64
    );
}

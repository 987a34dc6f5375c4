//! The behaviours Modal's official clients have and a real deployment needs: idempotent
//! retried creates, server retry delays, router JWTs expiring mid-stream, task ids that come
//! later, routers that start late.

use super::*;

fn provider(
    fake: &FakeModal,
    root: &Path,
    tune: impl FnOnce(&mut ModalConfig),
) -> ModalSandboxProvider {
    let mut config = config(fake, root);
    tune(&mut config);
    ModalSandboxProvider::new(config).expect("provider")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_create_is_retried_under_one_idempotency_key_and_makes_one_sandbox() {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    // Each attempt gives up after 500 ms; the create takes 1.5 s: two attempts time out.
    let provider = provider(&fake, root.path(), |c| {
        c.attempt_timeout = Duration::from_millis(500);
    });
    fake.set_create_delay(Duration::from_millis(1500));
    let sandbox = provider
        .create(&spec("slow", "owner"))
        .await
        .expect("create");
    let attempts = fake.create_attempts();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let key = &attempts[0].idempotency_key;
    assert_eq!(
        uuid::Uuid::parse_str(key).map(|u| u.get_version_num()),
        Ok(4)
    );
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(&attempt.idempotency_key, key, "one key for every attempt");
        assert_eq!(attempt.retry_attempt, n.to_string());
        assert_eq!(attempt.retry_delay.is_some(), n > 0, "{attempt:?}");
    }
    let delay: f64 = attempts[2].retry_delay.as_deref().unwrap().parse().unwrap();
    assert!(delay > 0.0);
    assert_eq!(
        fake.live_sandboxes(),
        [sandbox.id().to_owned()],
        "the retries made no extra sandbox"
    );
    let (out, _) = run(sandbox.as_ref(), "echo made once").await;
    assert_eq!(out, "made once\n");

    // Another create is another key.
    fake.set_create_delay(Duration::ZERO);
    let other = provider
        .create(&spec("fast", "owner"))
        .await
        .expect("create");
    let attempts = fake.create_attempts();
    assert_eq!(attempts.len(), 4);
    assert_ne!(&attempts[3].idempotency_key, key);
    assert_eq!(attempts[3].retry_attempt, "0");
    sandbox.terminate().await.unwrap();
    other.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_calls_wait_as_long_as_the_server_asks_within_the_budget() {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    let patient = provider(&fake, root.path(), |_| {});
    // More throttles than transient retries are allowed: only the server's delay helps.
    fake.throttle_next(4, Duration::from_millis(150));
    let sandbox = patient
        .create(&spec("throttled", "owner"))
        .await
        .expect("create");
    assert_eq!(fake.throttles_served(), 4);
    sandbox.terminate().await.unwrap();
    drop(sandbox);

    let impatient = provider(&fake, root.path(), |c| {
        c.max_throttle_wait = Duration::from_millis(500);
    });
    fake.throttle_next(1, Duration::from_secs(1));
    let refused = impatient.list_owned("owner").await;
    assert!(
        matches!(&refused, Err(e) if e.is_transient() && e.to_string().contains("ResourceExhausted")),
        "a delay beyond max_throttle_wait fails the call: {refused:?}"
    );
    assert_eq!(fake.throttles_served(), 5, "and was not retried");
    fake.throttle_next(2, Duration::from_millis(50));
    let listed = impatient.list_owned("owner").await;
    assert!(
        listed.is_ok(),
        "delays within the budget are waited: {listed:?}"
    );
    assert_eq!(fake.throttles_served(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_resumes_when_the_router_jwt_expires_mid_stream() {
    let s = setup().await;
    let sandbox = s
        .provider
        .create(&spec("jwt", "owner"))
        .await
        .expect("create");
    s.fake.expire_router_jwt_mid_stream();
    let process = sandbox.spawn(&shell("seq 1 5000")).await.unwrap();
    let (out, status) = finish(process).await;
    assert!(status.success(), "{status}");
    let expected: String = (1..=5000).map(|n| format!("{n}\n")).collect();
    assert_eq!(out.len(), expected.len(), "no byte lost or repeated");
    assert!(out == expected, "the output arrives in order");
    assert_eq!(s.fake.streams_refused(), 1, "the stream really was refused");
    sandbox.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_without_a_task_id_is_polled_until_it_has_one() {
    let s = setup().await;
    s.fake.withhold_task_ids(2);
    let sandbox = s
        .provider
        .create(&spec("task", "owner"))
        .await
        .expect("create");
    assert_eq!(s.fake.task_id_polls(), 3, "two empty answers, then the id");
    let (out, _) = run(sandbox.as_ref(), "echo scheduled").await;
    assert_eq!(out, "scheduled\n");

    // A reopened sandbox whose listing has no task id yet is polled the same way.
    s.fake.withhold_task_ids(1);
    let later = s
        .provider
        .create(&spec("task-2", "owner"))
        .await
        .expect("create");
    s.fake.withhold_task_ids(1);
    let reopened = s.provider.open(later.id()).await.expect("open");
    let (out, _) = run(reopened.as_ref(), "echo reopened").await;
    assert_eq!(out, "reopened\n");
    assert_eq!(
        s.fake.task_id_polls(),
        3 + 2 + 2,
        "create and open both polled"
    );
    sandbox.terminate().await.unwrap();
    later.terminate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_router_connection_waits_up_to_start_timeout() {
    let fake = FakeModal::start().await;
    let root = tempfile::tempdir().unwrap();
    let hasty = provider(&fake, root.path(), |c| {
        c.start_timeout = Duration::from_millis(300);
    });
    let patient = provider(&fake, root.path(), |c| {
        c.start_timeout = Duration::from_secs(60);
    });
    fake.start_router_late(Duration::from_secs(2)).await;
    let failed = hasty.create(&spec("hasty", "owner")).await;
    assert!(
        matches!(&failed, Err(e) if e.is_transient()),
        "an unreachable router fails the create after start_timeout: {:?}",
        failed.as_ref().map(|s| s.id().to_owned())
    );
    assert!(
        fake.live_sandboxes().is_empty(),
        "the failed sandbox was terminated"
    );
    let sandbox = patient
        .create(&spec("patient", "owner"))
        .await
        .expect("the create waits for the router");
    let (out, _) = run(sandbox.as_ref(), "echo reached").await;
    assert_eq!(out, "reached\n");
    sandbox.terminate().await.unwrap();
}

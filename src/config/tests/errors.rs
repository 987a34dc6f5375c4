//! Snapshot table of error messages: each names the source, the key and what was expected.

use super::error_text;

/// (case, config file, environment, expected message)
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    (
        "unknown key",
        "[server]\nlisen = \"127.0.0.1:1\"\n",
        &[],
        "agent-runtime.toml: server.lisen: unknown key; expected one of `listen`, `public_url`, `max_payload`, `allow_unauthenticated_remote`, `allowed_origins`, `allowed_hosts`, `console`",
    ),
    (
        "unknown section",
        "[serverr]\nlisten = \"127.0.0.1:1\"\n",
        &[],
        "agent-runtime.toml: serverr: unknown key; expected one of `server`, `auth`, `store`, `storage`, `profiles`, `sandbox`, `agent`, `sessions`, `quotas`, `limits`, `vars`, `log`, `convex`, `warm_pool`",
    ),
    (
        "unknown key in a backend section",
        "[store]\nkind = \"postgres\"\nurl = \"postgres://x/y\"\npool = 3\n",
        &[],
        "agent-runtime.toml: store.pool: unknown key; expected one of `url`, `max_connections`, `min_connections`, `acquire_timeout`",
    ),
    (
        "key of the default kind left in another kind",
        "[storage]\nkind = \"memory\"\nroot = \"data\"\n",
        &[],
        "agent-runtime.toml: storage.root: unknown key; kind = \"memory\" takes no other keys",
    ),
    (
        "unknown kind",
        "[store]\nkind = \"mysql\"\n",
        &[],
        "agent-runtime.toml: store.kind: unknown value \"mysql\"; expected one of `sqlite`, `postgres`, `convex`, `memory`",
    ),
    (
        "unknown auth mode",
        "[auth]\nmode = \"password\"\n",
        &[],
        "agent-runtime.toml: auth.mode: unknown value \"password\"; expected one of `none`, `shared-secret`, `principals`",
    ),
    (
        "kind is not a string",
        "[store]\nkind = 3\n",
        &[],
        "agent-runtime.toml: store.kind: expected a string, found a number",
    ),
    (
        "section is not a table",
        "store = \"sqlite\"\n",
        &[],
        "agent-runtime.toml: store: expected a table with a `kind` key",
    ),
    (
        "plain section is not a table",
        "server = 5\n",
        &[],
        "agent-runtime.toml: server: expected a table, found signed int `5`",
    ),
    (
        "missing key of a chosen kind",
        "[auth]\nmode = \"shared-secret\"\n",
        &[],
        "agent-runtime.toml: auth.secret: missing; this key is required",
    ),
    (
        "wrong type",
        "[sessions]\nmax_sessions = \"many\"\n",
        &[],
        "agent-runtime.toml: sessions.max_sessions: expected a whole number (0 or more), found string \"many\"",
    ),
    (
        "wrong type in a backend section",
        "[store]\nkind = \"postgres\"\nurl = \"postgres://h/d\"\nmax_connections = \"ten\"\n",
        &[],
        "agent-runtime.toml: store.max_connections: expected a whole number (0 or more), found string \"ten\"",
    ),
    (
        "negative number",
        "[sessions]\nmax_sessions = -1\n",
        &[],
        "agent-runtime.toml: sessions.max_sessions: invalid value signed int `-1`; expected a whole number (0 or more)",
    ),
    (
        "a table under [vars]",
        "[vars]\nnested = { a = 1 }\n",
        &[],
        "agent-runtime.toml: vars.nested: expected a string, number or boolean, found map",
    ),
    (
        "extra key in a kind without keys",
        "[auth]\nmode = \"none\"\nsecret = \"x\"\n",
        &[],
        "agent-runtime.toml: auth.secret: unknown key; mode = \"none\" takes no other keys",
    ),
    (
        "wrong type for a boolean",
        "[server]\nallow_unauthenticated_remote = \"yes\"\n",
        &[],
        "agent-runtime.toml: server.allow_unauthenticated_remote: expected a boolean, found string \"yes\"",
    ),
    (
        "an allowed origin with a path",
        "[server]\nallowed_origins = [\"https://app.example.com/ui\"]\n",
        &[],
        "agent-runtime.toml: server.allowed_origins: \"https://app.example.com/ui\" is not an origin: expected http://HOST[:PORT] or https://HOST[:PORT] (PORT may be *), or \"*\"",
    ),
    (
        "an allowed host with a scheme",
        "[server]\nallowed_hosts = [\"http://runtime.internal\"]\n",
        &[],
        "agent-runtime.toml: server.allowed_hosts: \"http://runtime.internal\" is not a host: expected NAME or NAME:PORT, or \"*\"",
    ),
    (
        "bad duration",
        "[sessions]\nidle_timeout = \"15 parsecs\"\n",
        &[],
        "agent-runtime.toml: sessions.idle_timeout: invalid duration \"15 parsecs\" (unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); expected a duration greater than zero like \"30s\", \"15m\" or \"1h30m\"",
    ),
    (
        "zero duration",
        "[sessions]\nsync_interval = \"0s\"\n",
        &[],
        "agent-runtime.toml: sessions.sync_interval: invalid duration \"0s\"; expected a duration greater than zero like \"30s\", \"15m\" or \"1h30m\"",
    ),
    (
        "duration as a number",
        "[sessions]\nidle_timeout = 30\n",
        &[],
        "agent-runtime.toml: sessions.idle_timeout: expected a duration greater than zero like \"30s\", \"15m\" or \"1h30m\", found signed int `30`",
    ),
    (
        "bad duration in a backend section",
        "[sandbox]\nterminate_grace = \"soon\"\n",
        &[],
        "agent-runtime.toml: sandbox.terminate_grace: invalid duration \"soon\" (expected number at 0); expected a duration like \"30s\", \"15m\" or \"1h30m\"",
    ),
    (
        "bad size",
        "[server]\nmax_payload = \"1 MegaByte\"\n",
        &[],
        "agent-runtime.toml: server.max_payload: invalid size: unknown unit \"megabyte\" in \"1 MegaByte\"; expected a size like \"1MiB\", \"512KiB\" or a number of bytes",
    ),
    (
        "size too small",
        "[server]\nmax_payload = \"1KiB\"\n",
        &[],
        "agent-runtime.toml: server.max_payload: must be at least 64KiB, found 1KiB",
    ),
    (
        "limit too small",
        "[limits]\nagent_line_bytes = 100\n",
        &[],
        "agent-runtime.toml: limits.agent_line_bytes: must be at least 64KiB, found 100B",
    ),
    (
        "bad listen address",
        "[server]\nlisten = \"localhost:4000\"\n",
        &[],
        "agent-runtime.toml: server.listen: invalid value string \"localhost:4000\"; expected an IP address and port like \"127.0.0.1:4000\" or \"[::1]:4000\"",
    ),
    (
        "unknown isolation",
        "[sandbox]\nisolation = \"docker\"\n",
        &[],
        "agent-runtime.toml: sandbox.isolation: unknown value \"docker\"; expected one of `auto`, `bubblewrap`, `dangerously-none`",
    ),
    (
        "missing ${VAR}",
        "[auth]\nmode = \"shared-secret\"\nsecret = \"${CFG_TEST_UNSET_KEY}\"\n",
        &[],
        "agent-runtime.toml: auth.secret: environment variable CFG_TEST_UNSET_KEY is not set (referenced as ${CFG_TEST_UNSET_KEY})",
    ),
    (
        "principals accepting nobody",
        "[auth]\nmode = \"principals\"\napi_keys = false\n",
        &[],
        "agent-runtime.toml: auth.api_keys: accepts no client: set api_keys = true or add [auth.jwt]",
    ),
    (
        "jwt with both a secret and a jwks_url",
        "[auth]\nmode = \"principals\"\n[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\nsecret = \"0123456789abcdef0123456789abcdef\"\njwks_url = \"https://x/jwks\"\n",
        &[],
        "agent-runtime.toml: auth.jwt: set exactly one of `secret` (HS256) and `jwks_url`",
    ),
    (
        "jwt with a short secret and no audience",
        "[auth]\nmode = \"principals\"\n[auth.jwt]\nissuer = \"i\"\naudience = \"\"\nsecret = \"short\"\n",
        &[],
        "agent-runtime.toml: auth.jwt.audience: must not be empty\nagent-runtime.toml: auth.jwt.secret: must have at least 32 characters",
    ),
    (
        "unterminated ${",
        "[vars]\nx = \"${HOME\"\n",
        &[],
        "agent-runtime.toml: vars.x: `${` without a closing `}`; write `$${` for a literal `${`",
    ),
    (
        "non-loopback without auth",
        "[server]\nlisten = \"0.0.0.0:4000\"\n",
        &[],
        "agent-runtime.toml: server.listen: 0.0.0.0:4000 is not a loopback address and auth.mode is \"none\": anyone who can reach it could run agents. Set auth.mode = \"shared-secret\", or server.allow_unauthenticated_remote = true to accept that",
    ),
    (
        "non-loopback from the environment",
        "",
        &[("AGENT_RUNTIME__SERVER__LISTEN", "0.0.0.0:4000")],
        "environment variable AGENT_RUNTIME__SERVER__LISTEN: server.listen: 0.0.0.0:4000 is not a loopback address and auth.mode is \"none\": anyone who can reach it could run agents. Set auth.mode = \"shared-secret\", or server.allow_unauthenticated_remote = true to accept that",
    ),
    (
        "bad duration from the environment",
        "",
        &[("AGENT_RUNTIME__SESSIONS__IDLE_TIMEOUT", "soon")],
        "environment variable AGENT_RUNTIME__SESSIONS__IDLE_TIMEOUT: sessions.idle_timeout: invalid duration \"soon\" (expected number at 0); expected a duration greater than zero like \"30s\", \"15m\" or \"1h30m\"",
    ),
    (
        "unknown key from the environment",
        "",
        &[("AGENT_RUNTIME__SERVER__PORT", "4000")],
        "environment variable AGENT_RUNTIME__SERVER__PORT: server.port: unknown key; expected one of `listen`, `public_url`, `max_payload`, `allow_unauthenticated_remote`, `allowed_origins`, `allowed_hosts`, `console`",
    ),
    (
        "invalid TOML",
        "[server\nlisten = 1\n",
        &[],
        "agent-runtime.toml: invalid TOML: TOML parse error at line 1, column 8\n  |\n1 | [server\n  |        ^\ninvalid table header\nexpected `.`, `]`",
    ),
    (
        "a warm pool larger than the sessions it serves",
        "[sessions]\nmax_sessions = 2\n[warm_pool]\nsize = 3\nmax_age = \"10m\"\n",
        &[],
        "agent-runtime.toml: warm_pool.size: must be at most sessions.max_sessions (2): more warm sandboxes than sessions could never all be taken",
    ),
    (
        "unknown key in the warm pool",
        "[warm_pool]\nsize = 1\nper_profile = true\n",
        &[],
        "agent-runtime.toml: warm_pool.per_profile: unknown key; expected one of `size`, `max_age`, `profiles`",
    ),
    (
        "per-profile warm pools that with the shared one outnumber the sessions",
        "[sessions]\nmax_sessions = 4\n[warm_pool]\nsize = 2\n[warm_pool.profiles]\nsupport = 2\nreview = 1\n",
        &[],
        "agent-runtime.toml: warm_pool: size and the sizes of [warm_pool.profiles] together must be at most sessions.max_sessions (4): more warm sandboxes than sessions could never all be taken",
    ),
    (
        "a per-profile warm pool not named by a profile name",
        "[warm_pool]\nsize = 0\n[warm_pool.profiles]\n\"../up\" = 1\n",
        &[],
        "agent-runtime.toml: warm_pool.profiles.\"../up\": is not a profile name (letters, digits, `.`, `_`, `-`, not starting with `.`)",
    ),
    (
        "several problems at once",
        "[server]\nmax_payload = 10\npublic_url = \"ftp://x\"\n[sessions]\nmax_sessions = 0\n",
        &[],
        "agent-runtime.toml: server.public_url: expected an http:// or https:// URL, found \"ftp://x\"\nagent-runtime.toml: server.max_payload: must be at least 64KiB, found 10B\nagent-runtime.toml: sessions.max_sessions: must be at least 1",
    ),
];

#[test]
fn error_messages() {
    let mut mismatches = Vec::new();
    for (case, toml, env, expected) in CASES {
        let actual = error_text(toml, env);
        if actual != *expected {
            mismatches.push(format!(
                "--- {case}\nexpected: {expected}\nactual:   {actual}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

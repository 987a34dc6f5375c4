// Drives the web console in headless Chromium (the system's browser, through
// playwright-core) against a running runtime. `tests/e2e/console.rs` starts the real
// binary and runs one scenario of this script per test:
//
//   RUNTIME_URL      the runtime's base URL
//   SCRIPT_ARGS      JSON: { scenario, screenshots, ... } (see each scenario)
//   CHROMIUM         the browser executable
//   CONSOLE_ASSETS   optional: serve the page's files from this directory instead of the
//                    binary's, to try changes to the console without rebuilding
//
// A scenario that needs the test to act (kill or start the runtime) prints
// `{"step": "<name>"}` and waits for a line on stdin. The last line printed is the
// scenario's JSON result. Any uncaught page error or console error fails the scenario.

import { mkdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const url = process.env.RUNTIME_URL;
const args = JSON.parse(process.env.SCRIPT_ARGS ?? '{}');
const timeout = Number(process.env.SCRIPT_TIMEOUT_MS ?? 60000);
mkdirSync(args.screenshots, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const replies = stdin[Symbol.asyncIterator]();

/** Asks the test to do `name` and waits for it to say it has. */
async function step(name, data = {}) {
  console.log(JSON.stringify({ step: name, ...data }));
  const { value, done } = await replies.next();
  if (done || value.trim() !== 'ok') throw new Error(`step ${name}: the test answered ${value}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  timeout,
  // Pages fulfilled from disk count as public pages, which may not reach loopback.
  args: process.env.CONSOLE_ASSETS ? ['--disable-features=LocalNetworkAccessChecks'] : [],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
context.setDefaultTimeout(timeout);
if (process.env.CONSOLE_ASSETS) {
  // For working on the console: its files from this directory instead of the binary's.
  await context.route(/\/(console\/.*)?$/, (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/(console\/)?/, '') || 'index.html';
    const type = path.endsWith('.css') ? 'text/css' : path.endsWith('.js') ? 'text/javascript' : 'text/html';
    route.fulfill({ body: readFileSync(`${process.env.CONSOLE_ASSETS}/${path}`), contentType: type });
  });
}
const page = await context.newPage();
const problems = [];
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('console', (message) => {
  if (message.type() !== 'error') return;
  // A refused token is an expected 401 in the sign-in scenario; the page handles it.
  if (args.allowUnauthorized && /status of 401/.test(message.text())) return;
  // While the runtime is down or the page offline, its reconnect attempts fail loudly.
  const networkDown = /ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection to .* failed/;
  if (args.scenario === 'restart' && networkDown.test(message.text())) return;
  problems.push(`console error: ${message.text()}`);
});
page.on('dialog', (dialog) => dialog.accept());

async function shot(name) {
  await page.screenshot({ path: `${args.screenshots}/${args.scenario}-${name}.png`, fullPage: false });
}

/** The agent's text that contains `text`. */
const agentSays = (text) => page.locator('.msg.assistant .md', { hasText: text }).last();

const statusIs = (status) => page.locator('#session-status', { hasText: new RegExp(`^${status}$`) }).waitFor();

async function send(text) {
  await page.fill('#message', text);
  await page.keyboard.press('Control+Enter');
  await page.locator('#message').and(page.locator(':focus')).waitFor();
  await page.waitForFunction(() => document.getElementById('message').value === '');
}

/** The seqs of the rendered events, in page order. */
const renderedSeqs = () =>
  page.$$eval('#conversation [data-seq]', (nodes) => nodes.map((node) => Number(node.dataset.seq)));

/** Every event of the session's log, from the REST API. */
async function loggedEvents(sessionId, token) {
  const events = [];
  let after = 0;
  for (;;) {
    const response = await fetch(`${url}/v1/sessions/${sessionId}/events?after=${after}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    const page = await response.json();
    events.push(...page.events);
    if (!page.hasMore || !page.events.length) return events;
    after = page.events[page.events.length - 1].seq;
  }
}

/** The page shows every event of the log exactly once, in order. */
async function showsTheWholeLog(sessionId) {
  const logged = (await loggedEvents(sessionId)).map((event) => event.seq);
  await page.locator('#session-events', { hasText: `${logged.length} events` }).waitFor();
  // Folded turns render their events when opened.
  await page.$$eval('details.turn:not([open])', (turns) => turns.forEach((turn) => { turn.open = true; }));
  await page.waitForFunction((count) => document.querySelectorAll('#conversation [data-seq]').length >= count, logged.length);
  const seqs = await renderedSeqs();
  check(JSON.stringify(seqs) === JSON.stringify(logged), `rendered ${JSON.stringify(seqs)}, logged ${JSON.stringify(logged)}`);
  return logged.length;
}

async function createWithForm(profile, fill) {
  await page.goto(url);
  await page.locator('#workspace').waitFor();
  await page.selectOption('#profile', profile);
  await fill();
  await page.click('#create-form button[type=submit]');
  await page.locator('#session').waitFor();
  await statusIs('idle');
  return (await page.textContent('#session-title')).trim();
}

const scenarios = {
  /** Create with the metadata form, stream, files, interrupt, approvals, stop, resume, fork, delete. */
  async main() {
    await page.goto(url);
    await page.locator('#workspace').waitFor();
    // A keyboard starts at the skip link, then reaches the form.
    await page.keyboard.press('Tab');
    check((await page.evaluate(() => document.activeElement.className)) === 'skip', 'the skip link comes first');
    await page.keyboard.press('Tab');
    check((await page.evaluate(() => document.activeElement.id)) === 'profile', 'then the profile');
    await page.selectOption('#profile', 'console');
    check(await page.isVisible('label:has-text("Topic (required)")'), 'the required field is marked');
    check(await page.$$eval('#metadata-fields select option', (o) => o.map((x) => x.textContent).join()) === '—,low,high', 'the enum is a select');
    check((await page.getAttribute('label:has-text("attempts") + input', 'type')) === 'number', 'integers are number inputs');
    await page.click('#create-form button[type=submit]');
    await page.locator('#create-error', { hasText: 'Topic is required' }).waitFor();
    await page.getByLabel('Topic').fill('release notes');
    await page.getByLabel('priority').selectOption({ label: 'high' });
    await page.getByLabel('attempts').fill('2');
    await page.getByLabel('urgent').check();
    await shot('form');
    await page.click('#create-form button[type=submit]');
    await page.locator('#session').waitFor();
    await statusIs('idle');
    const id = (await page.textContent('#session-title')).trim();
    const stored = await (await fetch(`${url}/v1/sessions/${id}`)).json();
    check(
      JSON.stringify(stored.session.metadata) === JSON.stringify({ attempts: 2, priority: 'high', topic: 'release notes', urgent: true }),
      `metadata from the form: ${JSON.stringify(stored.session.metadata)}`,
    );
    await page.locator('#session-meta dd', { hasText: 'release notes' }).waitFor();

    // Markdown, safely.
    await send(
      'reply # Plan\n\nThis is **bold**, `code` and a [link](https://example.com/a?b=1&c=2), not [this](javascript:alert(1)).\n\n' +
        '- one\n- two\n\n```\nfn main() {}\n```\n<img src=x onerror=alert(1)>',
    );
    const reply = page.locator('.msg.assistant .md', { hasText: 'bold' }).last();
    await reply.waitFor();
    check((await reply.locator('h3').textContent()) === 'Plan', 'a heading');
    check((await reply.locator('strong').textContent()) === 'bold', 'bold');
    check((await reply.locator('code').first().textContent()) === 'code', 'inline code');
    check((await reply.locator('a').getAttribute('href')) === 'https://example.com/a?b=1&c=2', 'a safe link');
    check((await reply.locator('a').count()) === 1, 'no javascript: link');
    check((await reply.locator('li').count()) === 2, 'a list');
    check((await reply.locator('pre code').textContent()) === 'fn main() {}', 'a fenced block');
    check((await reply.locator('img').count()) === 0, 'no raw HTML');
    check((await reply.textContent()).includes('<img src=x onerror=alert(1)>'), 'raw HTML shown as text');
    await page.locator('.meta.result').last().waitFor();
    await page.locator('#session-usage', { hasText: /1 turns/ }).waitFor();

    // A file the agent writes, downloaded from its event and from the file list.
    await send('write notes/hello.txt hello from the console');
    const fileButton = page.locator('.meta.file button', { hasText: 'notes/hello.txt' });
    await fileButton.waitFor();
    await page.locator('.tool.done summary', { hasText: 'Tool call: Write' }).last().waitFor();
    const [fromEvent] = await Promise.all([page.waitForEvent('download'), fileButton.click()]);
    check(readFileSync(await fromEvent.path(), 'utf8') === 'hello from the console', 'the downloaded file');
    check(fromEvent.suggestedFilename() === 'hello.txt', 'its name');
    await page.click('#act-files');
    const listed = page.locator('#file-list button', { hasText: 'notes/hello.txt' });
    await listed.waitFor();
    await shot('files');
    const [fromList] = await Promise.all([page.waitForEvent('download'), listed.click()]);
    check(readFileSync(await fromList.path(), 'utf8') === 'hello from the console', 'the file from the list');
    await page.click('#act-files');

    // Interrupt a long turn.
    await send('sleep 600000');
    await statusIs('running');
    await page.click('#act-interrupt');
    await page.locator('.meta.result', { hasText: 'error_during_execution' }).waitFor();
    await statusIs('idle');

    // An approval, answered in the page.
    await send('ask Bash {"command":"ls -la"}');
    const card = page.locator('#pending .card');
    await card.waitFor();
    await statusIs('waiting');
    check((await card.locator('h4').textContent()) === 'Allow Bash?', 'the approval names the tool');
    await shot('approval');
    // The skip link leads the keyboard to the message box, and the session stays open.
    await page.focus('.skip');
    await page.keyboard.press('Enter');
    check((await page.evaluate(() => document.activeElement.id)) === 'message', 'the skip link reaches the message box');
    check(await page.isVisible('#pending .card'), 'the session stays open');
    const unlabelled = await page.$$eval('input, select, textarea, button', (controls) =>
      controls
        .filter((control) => control.offsetParent !== null)
        .filter((control) => (control.tagName === 'BUTTON' ? !control.textContent.trim() : !control.labels?.length))
        .map((control) => control.outerHTML.slice(0, 80)),
    );
    check(unlabelled.length === 0, `every visible control has a label: ${unlabelled.join(', ')}`);
    // Allowed with an input of the person's own.
    await card.locator('summary', { hasText: 'Edit the input' }).click();
    await card.getByLabel('Input (JSON object)').fill('[1]');
    await card.getByRole('button', { name: 'Allow with this input' }).click();
    await card.locator('.error', { hasText: 'must be a JSON object' }).waitFor();
    await card.getByLabel('Input (JSON object)').fill('{"command":"pwd"}');
    await card.getByRole('button', { name: 'Allow with this input' }).click();
    await agentSays('TOOL RESULT SEEN: allowed: {"command":"pwd"}').waitFor();
    await page.locator('#pending').waitFor({ state: 'hidden' });
    await page.locator('.meta.answer', { hasText: 'Answer: allow by local' }).waitFor();
    await statusIs('idle');

    // A question, answered with an option.
    const question = {
      questions: [
        {
          question: 'Which colour?',
          header: 'Colour',
          options: [
            { label: 'red', description: 'warm' },
            { label: 'blue', description: 'cool' },
          ],
          multiSelect: false,
        },
      ],
    };
    await send(`ask AskUserQuestion ${JSON.stringify(question)}`);
    await page.locator('#pending .card fieldset').waitFor();
    check(await page.isDisabled('#act-fork'), 'no fork while the agent waits');
    await page.getByLabel('blue').check();
    await shot('question');
    await page.locator('#pending .card').getByRole('button', { name: 'Answer' }).click();
    await agentSays('"Which colour?"="blue"').waitFor();

    // Stop, resume, and talk again.
    await page.click('#act-stop');
    await statusIs('stopped');
    check(await page.isDisabled('#act-stop'), 'a stopped session cannot be stopped');
    await page.click('#act-resume');
    await statusIs('idle');
    await send('reply back again');
    await agentSays('back again').waitFor();
    await page.locator('.meta.result').last().waitFor();
    await statusIs('idle');
    const events = await showsTheWholeLog(id);
    await shot('conversation');

    // The list and its filters.
    const link = page.locator(`.session-link[data-session-id="${id}"]`);
    await page.selectOption('#filter-status', 'idle');
    await link.waitFor();
    await page.selectOption('#filter-status', 'stopped');
    await link.waitFor({ state: 'detached' });
    await page.selectOption('#filter-status', '');
    await page.selectOption('#filter-profile', 'console');
    await link.waitFor();

    // Fork: offered only by a runtime whose sessions say where they came from.
    const canFork = 'forkedFrom' in stored.session;
    check((await page.isDisabled('#act-fork')) === !canFork, `the fork button follows the runtime (${canFork})`);
    let forked = false;
    if (canFork) {
      await page.click('#act-fork');
      // A new session opens, or the page says why not.
      forked = await Promise.race([
        page.locator('#session-meta dt', { hasText: 'Forked from' }).waitFor().then(() => true),
        page.locator('#action-error').filter({ hasText: /\S/ }).waitFor().then(() => false),
      ]);
      await page.goto(`${url}/#session=${id}`);
      await statusIs('idle');
    }

    // Delete.
    await page.click('#act-delete');
    await page.locator('#empty').waitFor();
    await link.waitFor({ state: 'detached' });
    const gone = await fetch(`${url}/v1/sessions/${id}`);
    check(gone.status === 404, `deleted: ${gone.status}`);
    return { id, events, forked };
  },

  /** The runtime restarts under the page: no event is missing or shown twice. */
  async restart() {
    const id = await createWithForm('tester', async () => {});
    await send('reply before the restart');
    await agentSays('before the restart').waitFor();
    await statusIs('idle');
    await step('kill');
    await page.locator('body[data-connection=reconnecting]').waitFor();
    await shot('disconnected');
    // Offline while the runtime comes back and writes more, so the page can only learn
    // of those events by filling the gap.
    await context.setOffline(true);
    await step('start', { sessionId: id });
    await context.setOffline(false);
    await page.locator('body[data-connection=connected]').waitFor();
    await agentSays('written while the page was away').waitFor();
    await page.locator('.meta.status', { hasText: 'recovered' }).first().waitFor();
    await send('reply after the restart');
    await agentSays('after the restart').waitFor();
    await page.locator('.meta.result').last().waitFor();
    await statusIs('idle');
    const events = await showsTheWholeLog(id);
    await shot('reconnected');
    return { id, events };
  },

  /** A session of more than 10,000 events and 160 turns opens, and stays usable. */
  async large() {
    await page.goto(`${url}/#session=${args.sessionId}`);
    const logged = (await loggedEvents(args.sessionId)).length;
    check(logged > 10000, `a large session: ${logged} events`);
    await page.locator('#session-events', { hasText: `${logged} events` }).waitFor();
    await agentSays('turn 160').waitFor();
    const rendered = await page.locator('#conversation [data-seq]').count();
    check(rendered <= 1000, `at most a window of events is rendered: ${rendered}`);
    const turns = await page.locator('details.turn').count();
    check(turns <= 150, `at most 150 turns are on the page: ${turns}`);
    // The oldest turns come back on demand; the first one holds the 10,000 chunks.
    while (await page.isVisible('.earlier-turns')) await page.click('.earlier-turns');
    const first = page.locator('details.turn').nth(1);
    await first.locator('summary').first().click();
    await agentSays(/^chunk 10000$/).waitFor();
    const inTurn = await first.locator('[data-seq]').count();
    check(inTurn <= 1000, `a long turn renders a window of its events: ${inTurn}`);
    const more = first.locator('.turn-body > .more');
    check(/hidden/.test(await more.textContent()), 'earlier events can be shown');
    await more.click();
    const afterMore = await first.locator('[data-seq]').count();
    check(afterMore > inTurn, `showing earlier events renders them: ${afterMore}`);
    await send('reply still responsive');
    await agentSays('still responsive').waitFor();
    await shot('large');
    return { logged, rendered, turns, inTurn, afterMore };
  },

  /** The pinned Claude Code: partial messages stream in, then give way to the message. */
  async claude() {
    const id = await createWithForm('claude', async () => {});
    await send('hello from the console');
    await agentSays('echo: hello from the console').waitFor();
    await send(`TOOL:Bash {"command":"printf 'made by claude' > made.txt"}`);
    await page.locator('.meta.file button', { hasText: 'made.txt' }).waitFor();
    await page.locator('.tool.done summary', { hasText: 'Tool call: Bash' }).waitFor();
    await statusIs('idle');
    const logged = await loggedEvents(id);
    const partial = logged.filter((event) => event.type === 'agent' && event.data.type === 'stream_event').length;
    check(partial > 0, 'Claude Code streamed partial messages');
    check((await page.locator('.msg.partial').count()) > 0, 'partial text was shown');
    check((await page.locator('.msg.partial:visible').count()) === 0, 'partial text gives way to the message');
    const events = await showsTheWholeLog(id);
    await shot('claude');
    return { id, events, partial };
  },

  /** With tokens required, the page asks for one and keeps it for the tab. */
  async auth() {
    await page.goto(url);
    await page.locator('#login').waitFor();
    await shot('login');
    await page.getByLabel('Token').fill('not-the-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-error', { hasText: 'That token was refused.' }).waitFor();
    await page.getByLabel('Token').fill(args.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#workspace').waitFor();
    await page.locator('#connection', { hasText: 'Connected' }).waitFor();
    check((await page.$$eval('#profile option', (o) => o.length)) > 0, 'profiles are listed');
    const stored = await page.evaluate(() => sessionStorage.getItem('agent-runtime.token'));
    check(stored === args.token, 'the token is kept in sessionStorage');
    await page.reload();
    await page.locator('#workspace').waitFor();
    await page.click('#create-form button[type=submit]');
    await page.locator('#session').waitFor();
    await statusIs('idle');
    await send('reply with a token');
    await agentSays('with a token').waitFor();
    const id = (await page.textContent('#session-title')).trim();
    await page.click('#sign-out');
    await page.locator('#login').waitFor();
    check((await page.evaluate(() => sessionStorage.getItem('agent-runtime.token'))) === null, 'forgotten');
    if (args.otherToken) {
      // Another principal sees none of it: not in the list, and not found when named.
      await page.getByLabel('Token').fill(args.otherToken);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#sessions li', { hasText: 'No sessions.' }).waitFor();
      await page.goto(`${url}/#session=${id}`);
      await page.locator('#action-error', { hasText: 'not_found' }).waitFor();
      check((await page.textContent('#session-meta')) === '', 'nothing of the other session is shown');
      check((await page.textContent('#session-usage')) === '', 'not even its usage');
      await shot('other-principal');
    }
    return { id };
  },
};

let result;
try {
  const scenario = scenarios[args.scenario];
  if (!scenario) throw new Error(`unknown scenario ${args.scenario}`);
  result = await scenario();
  check(problems.length === 0, problems.join('\n'));
} catch (error) {
  await shot('failure').catch(() => {});
  console.error(error);
  console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
  stdin.close();
}
if (process.exitCode !== 1) console.log(JSON.stringify({ ok: true, ...result }));

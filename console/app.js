// The console's page logic: sign-in, profiles and the create form, the session list, and
// the open session (its conversation, pending requests, files and actions).
//
// The open session is followed like any client of docs/protocol.md must: events are
// applied strictly in seq order, once; a gap, and every reconnect, is filled with
// `session:join { afterSeq: <last seq applied> }`, page after page while `hasMore`.

import { ApiError, connect, downloadFile, getJson, token } from './api.js';
import { Conversation, SeqOrder } from './conversation.js';
import { listFiles } from './files.js';
import { PendingRequests } from './pending.js';
import { showSessionHead } from './session-head.js';
import { buildSchemaForm } from './schema-form.js';

const $ = (id) => document.getElementById(id);

const state = {
  connection: null,
  profiles: [],
  readMetadata: () => undefined,
  listCursor: null,
  current: null, // { id, session, order, filling, fillAgain }
};

const conversation = new Conversation($('conversation'), {
  download: (path) => download(path),
});
const pending = new PendingRequests($('pending'), $('pending-list'), (requestId, body) =>
  request('session:answer', { sessionId: state.current.id, requestId, ...body }),
);

function say(element, text) {
  $(element).textContent = text;
}

function describeError(error) {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error?.message ?? error);
}

function request(event, payload, timeoutMs) {
  return state.connection.request(event, payload, timeoutMs);
}

// ---- sign-in -------------------------------------------------------------------------

async function start() {
  let profiles;
  try {
    ({ profiles } = await getJson('/v1/profiles'));
  } catch (error) {
    if (error instanceof ApiError && error.code === 'unauthorized') return showLogin(token.get() ? 'That token was refused.' : '');
    say('connection', `The runtime cannot be reached: ${describeError(error)}`);
    return;
  }
  $('login').hidden = true;
  $('workspace').hidden = false;
  $('sign-out').hidden = !token.get();
  state.profiles = profiles;
  fillProfiles();
  state.connection?.close();
  state.connection = connect({
    onEvent,
    onState: (connection) => {
      if (connection === 'unauthorized') return showLogin('The token is no longer accepted.');
      say('connection', connection === 'connected' ? 'Connected' : 'Reconnecting…');
      document.body.dataset.connection = connection;
    },
    onReconnect: () => {
      if (state.current) fill();
      loadSessions();
    },
  });
  await loadSessions();
  openFromHash();
}

function showLogin(message) {
  // Nothing of the last principal's stays on the page.
  closeSession();
  $('sessions').replaceChildren();
  state.connection?.close();
  state.connection = null;
  $('workspace').hidden = true;
  $('login').hidden = false;
  $('sign-out').hidden = true;
  say('connection', 'Sign-in needed');
  say('login-error', message ?? '');
  $('token').focus();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token.set($('token').value.trim());
  $('token').value = '';
  start();
});

$('sign-out').addEventListener('click', () => {
  token.clear();
  showLogin('');
});

// ---- profiles and the create form ----------------------------------------------------

function fillProfiles() {
  const select = $('profile');
  const filter = $('filter-profile');
  select.replaceChildren(...state.profiles.map((profile) => new Option(profile.name, profile.name)));
  filter.replaceChildren(new Option('any', ''), ...state.profiles.map((profile) => new Option(profile.name, profile.name)));
  showProfile();
}

function showProfile() {
  const profile = state.profiles.find((candidate) => candidate.name === $('profile').value);
  say('profile-description', profile?.description ?? '');
  state.readMetadata = buildSchemaForm($('metadata-fields'), profile?.metadataSchema ?? null);
}

$('profile').addEventListener('change', showProfile);

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  say('create-error', '');
  const payload = { agentType: $('profile').value };
  try {
    const metadata = state.readMetadata();
    if (metadata !== undefined) payload.metadata = metadata;
  } catch (error) {
    return say('create-error', error.message);
  }
  const first = $('first-message').value.trim();
  if (first) payload.message = first;
  const submit = event.submitter ?? $('create-form').querySelector('button[type=submit]');
  submit.disabled = true;
  say('create-error', 'Starting the session…');
  try {
    const { session } = await request('session:create', payload);
    say('create-error', '');
    $('first-message').value = '';
    location.hash = `session=${encodeURIComponent(session.id)}`;
    loadSessions();
  } catch (error) {
    say('create-error', describeError(error));
  } finally {
    submit.disabled = false;
  }
});

// ---- the session list -----------------------------------------------------------------

async function loadSessions(more = false) {
  const params = new URLSearchParams({ limit: '50' });
  if ($('filter-status').value) params.set('status', $('filter-status').value);
  if ($('filter-profile').value) params.set('agentType', $('filter-profile').value);
  if (more && state.listCursor) params.set('cursor', state.listCursor);
  let page;
  try {
    page = await getJson(`/v1/sessions?${params}`);
  } catch (error) {
    if (error.code === 'unauthorized') return showLogin('The token is no longer accepted.');
    return say('list-error', describeError(error));
  }
  say('list-error', '');
  const items = page.sessions.map((session) => {
    const item = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'session-link';
    open.dataset.sessionId = session.id;
    if (session.id === state.current?.id) open.setAttribute('aria-current', 'true');
    const name = document.createElement('span');
    name.className = 'session-name';
    name.textContent = `${session.agentType} · ${session.id.slice(-8)}`;
    const status = document.createElement('span');
    status.className = `badge status-${session.status}`;
    status.textContent = session.status;
    open.append(name, ' ', status);
    open.addEventListener('click', () => {
      location.hash = `session=${encodeURIComponent(session.id)}`;
    });
    item.append(open);
    return item;
  });
  if (more) $('sessions').append(...items);
  else $('sessions').replaceChildren(...items);
  if (!more && !items.length) {
    const empty = document.createElement('li');
    empty.className = 'hint';
    empty.textContent = 'No sessions.';
    $('sessions').append(empty);
  }
  state.listCursor = page.nextCursor ?? null;
  $('more-sessions').hidden = !state.listCursor;
}

$('filter-status').addEventListener('change', () => loadSessions());
$('filter-profile').addEventListener('change', () => loadSessions());
$('refresh-sessions').addEventListener('click', () => loadSessions());
$('more-sessions').addEventListener('click', () => loadSessions(true));

// ---- the open session -----------------------------------------------------------------

function openFromHash() {
  const match = location.hash.match(/^#session=(.+)$/);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && id !== state.current?.id) openSession(id);
  if (!id && state.current) closeSession();
}

// The skip link moves focus without touching the hash, which names the open session.
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  const target = $('session').hidden ? $('profile') : $('message');
  target.focus();
});

window.addEventListener('hashchange', () => {
  if (state.connection) openFromHash();
});

function closeSession() {
  if (state.current && state.connection) request('session:leave', { sessionId: state.current.id }).catch(() => {});
  state.current = null;
  conversation.reset();
  pending.reset();
  $('session').hidden = true;
  $('empty').hidden = false;
}

function openSession(id) {
  closeSession();
  const current = { id, session: null, filling: false, fillAgain: false };
  current.order = new SeqOrder((event) => apply(current, event), () => fill());
  state.current = current;
  $('session').hidden = false;
  $('empty').hidden = true;
  $('files').hidden = true;
  say('action-error', '');
  say('session-title', id);
  say('session-events', '');
  // Nothing of the session shown before stays until this one is read.
  say('session-status', '');
  $('session-status').className = 'badge';
  say('session-usage', '');
  $('session-meta').replaceChildren();
  for (const button of document.querySelectorAll('.session-head .actions button')) {
    button.disabled = !['act-delete', 'act-files'].includes(button.id);
  }
  for (const link of document.querySelectorAll('.session-link')) {
    link.toggleAttribute('aria-current', link.dataset.sessionId === id);
  }
  fill();
}

/** Joins the open session's room and reads every event after the last one applied. */
async function fill() {
  const current = state.current;
  if (!current) return;
  if (current.filling) {
    current.fillAgain = true;
    return;
  }
  current.filling = true;
  try {
    do {
      current.fillAgain = false;
      let hasMore = true;
      while (hasMore && state.current === current) {
        const ack = await request('session:join', { sessionId: current.id, afterSeq: current.order.lastSeq });
        if (state.current !== current) return;
        showSession(ack.session);
        for (const event of ack.events) current.order.offer(event);
        hasMore = ack.hasMore && ack.events.length > 0;
      }
    } while (current.fillAgain && state.current === current);
    say('session-events', `${current.order.lastSeq} events`);
    if ($('action-error').textContent.startsWith('Could not load')) say('action-error', '');
  } catch (error) {
    if (state.current === current) say('action-error', `Could not load the session: ${describeError(error)}`);
  } finally {
    current.filling = false;
  }
}

function onEvent(envelope) {
  const current = state.current;
  if (!current || envelope?.sessionId !== current.id) {
    if (envelope?.type === 'status') updateListStatus(envelope.sessionId, envelope.data?.status);
    return;
  }
  current.order.offer(envelope);
}

function apply(current, event) {
  conversation.add(event);
  pending.follow(event);
  if (event.type === 'status' && current.session) {
    current.session.status = event.data?.status;
    updateListStatus(current.id, current.session.status);
    showSession(current.session);
  }
  // Usage and cost are the record's; it is saved as a turn ends and at status changes.
  if ((event.type === 'agent' && event.data?.type === 'result') || event.type === 'status') refreshSoon(current);
  if (!current.filling) say('session-events', `${current.order.lastSeq} events`);
}

let refreshTimer = 0;
function refreshSoon(current) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    if (state.current !== current) return;
    try {
      const { session } = await request('session:get', { sessionId: current.id });
      if (state.current === current) showSession(session);
    } catch {
      // The next event or join shows it.
    }
  }, 300);
}

function updateListStatus(id, status) {
  const link = document.querySelector(`.session-link[data-session-id="${CSS.escape(id ?? '')}"] .badge`);
  if (link && status) {
    link.className = `badge status-${status}`;
    link.textContent = status;
  }
}

function showSession(session) {
  const current = state.current;
  if (!current || session.id !== current.id) return;
  current.session = session;
  showSessionHead(session);
}

async function act(button, work) {
  say('action-error', '');
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await work();
  } catch (error) {
    say('action-error', describeError(error));
  } finally {
    button.removeAttribute('aria-busy');
    if (state.current?.session) showSession(state.current.session);
    else button.disabled = false;
  }
}

function sessionAction(id, event) {
  $(id).addEventListener('click', () =>
    act($(id), async () => {
      const ack = await request(event, { sessionId: state.current.id });
      if (ack.session) showSession(ack.session);
    }),
  );
}
sessionAction('act-interrupt', 'session:interrupt');
sessionAction('act-stop', 'session:stop');
sessionAction('act-resume', 'session:resume');

$('act-fork').addEventListener('click', () =>
  act($('act-fork'), async () => {
    const { session } = await request('session:fork', { sessionId: state.current.id });
    loadSessions();
    location.hash = `session=${encodeURIComponent(session.id)}`;
  }),
);

$('act-delete').addEventListener('click', () => {
  const id = state.current.id;
  if (!confirm(`Delete session ${id}? Its events and files are gone for good.`)) return;
  act($('act-delete'), async () => {
    await request('session:delete', { sessionId: id });
    history.replaceState(null, '', location.pathname);
    closeSession();
    loadSessions();
  });
});

$('act-files').addEventListener('click', () => {
  const section = $('files');
  section.hidden = !section.hidden;
  $('act-files').setAttribute('aria-expanded', String(!section.hidden));
  if (!section.hidden) loadFiles();
});
$('refresh-files').addEventListener('click', () => loadFiles());

function loadFiles() {
  return listFiles(state.current.id, { list: $('file-list'), error: $('files-error'), download });
}

async function download(path) {
  try {
    await downloadFile(state.current.id, path);
  } catch (error) {
    say('action-error', `Download failed: ${describeError(error)}`);
  }
}

$('message-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('message').value;
  if (!text.trim() || !state.current) return;
  const send = $('message-form').querySelector('button[type=submit]');
  send.disabled = true;
  say('action-error', '');
  try {
    await request('session:message', { sessionId: state.current.id, content: text });
    $('message').value = '';
  } catch (error) {
    say('action-error', describeError(error));
  } finally {
    send.disabled = false;
    $('message').focus();
  }
});

$('message').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    $('message-form').requestSubmit();
  }
});

start();

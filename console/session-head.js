// The open session's header: status, usage and cost, its record's facts, and which
// actions its status allows.

import { formatUsd } from './conversation.js';

const $ = (id) => document.getElementById(id);

/** Shows `session` (a session object of docs/protocol.md). */
export function showSessionHead(session) {
  const status = $('session-status');
  status.className = `badge status-${session.status}`;
  status.textContent = session.status;
  const usage = session.usage ?? {};
  $('session-usage').textContent =
    `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out tokens · ${formatUsd(usage.costUsd ?? 0)} · ${usage.turns ?? 0} turns`;
  const meta = $('session-meta');
  const rows = [
    ['Profile', session.agentType],
    ['Created', new Date(session.createdAt).toLocaleString()],
    ...Object.entries(session.metadata ?? {}).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
  ];
  if (session.forkedFrom) rows.push(['Forked from', `${session.forkedFrom.sessionId} (event ${session.forkedFrom.seq})`]);
  if (session.error) rows.push(['Error', `${session.error.code}: ${session.error.message}`]);
  meta.replaceChildren(
    ...rows.map(([key, value]) => {
      const group = document.createElement('div');
      const term = document.createElement('dt');
      term.textContent = key;
      const description = document.createElement('dd');
      description.textContent = value;
      group.append(term, description);
      return group;
    }),
  );
  const live = ['starting', 'idle', 'running', 'waiting'].includes(session.status);
  $('act-interrupt').disabled = !['running', 'waiting'].includes(session.status);
  $('act-stop').disabled = !live;
  $('act-resume').disabled = !['stopped', 'failed'].includes(session.status);
  // A runtime that forks says where each session came from (`forkedFrom`, null for one
  // that was created); one that does not has no such field, and no fork is offered. A
  // fork of a session whose turn runs is refused (`session_busy`).
  const canFork = 'forkedFrom' in session;
  const fork = $('act-fork');
  fork.disabled = !canFork || ['running', 'waiting'].includes(session.status);
  fork.title = canFork ? '' : 'This runtime cannot fork sessions';
}

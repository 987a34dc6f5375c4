// How the console talks to the runtime: REST for profiles, session lists and files,
// Socket.IO for everything about a session. The token (an API key, a JWT or the shared
// secret) is kept in sessionStorage: it lives as long as the tab and is never a cookie.

import { io } from './vendor/socket.io.esm.min.js';

const TOKEN_KEY = 'agent-runtime.token';

/** An error answer of the runtime: `{ code, message }` as docs/protocol.md lists them. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  const error = body?.error ?? {};
  return new ApiError(error.code ?? `http_${response.status}`, error.message ?? response.statusText, response.status);
}

/** GETs a JSON resource of the REST API. */
export async function getJson(path) {
  const response = await fetch(path, { headers: headers({ Accept: 'application/json' }), cache: 'no-store' });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Fetches a workspace file and saves it under its own name. */
export async function downloadFile(sessionId, path) {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  const response = await fetch(`/v1/sessions/${encodeURIComponent(sessionId)}/files/${encoded}`, {
    headers: headers(),
    cache: 'no-store',
  });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = path.split('/').pop() || 'file';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * The Socket.IO connection. `onEvent(envelope)` gets every `session:event`,
 * `onState(state)` 'connected' | 'reconnecting' | 'unauthorized', and `onReconnect()`
 * is called on every connection after the first, when rooms must be joined again.
 */
export function connect({ onEvent, onState, onReconnect }) {
  const socket = io({
    auth: (callback) => callback({ token: token.get() }),
    reconnectionDelayMax: 3000,
  });
  let connectedBefore = false;
  socket.on('connect', () => {
    onState('connected');
    if (connectedBefore) onReconnect();
    connectedBefore = true;
  });
  socket.on('disconnect', () => onState('reconnecting'));
  socket.on('connect_error', (error) => {
    if (error?.message === 'unauthorized') {
      socket.disconnect();
      onState('unauthorized');
    } else {
      onState('reconnecting');
    }
  });
  socket.on('session:event', onEvent);
  return {
    socket,
    /**
     * Sends a request and resolves with its ack, or rejects with an ApiError. A request
     * that gets no ack within `timeoutMs` rejects with code `timeout`.
     */
    request(event, payload, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        socket.timeout(timeoutMs).emit(event, payload, (error, ack) => {
          if (error) return reject(new ApiError('timeout', `no answer to ${event}`));
          if (ack?.ok) return resolve(ack);
          const { code = 'internal', message = 'request failed' } = ack?.error ?? {};
          reject(new ApiError(code, message));
        });
      });
    },
    close: () => socket.disconnect(),
  };
}

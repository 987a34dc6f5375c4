// The conversation of one session: events in seq order, grouped into turns (a turn starts
// at each `input` event), rendered incrementally.
//
// Large sessions stay fast: events are rendered in one batch per animation frame; a turn
// shows at most WINDOW of its events (a button renders earlier ones on demand); only the
// last OPEN_TURNS turns stay open, older ones are folded and their nodes dropped until
// they are opened again; past SHOWN_TURNS turns the oldest leave the page until asked
// for. Every rendered event is exactly one element carrying its
// `data-seq` (events merged into another element, such as a tool's result or a streamed
// text delta, leave a hidden marker), so the page can be checked for gaps and duplicates.

import { renderMarkdown } from './markdown.js';

const WINDOW = 300;
const OPEN_TURNS = 4;
const SHOWN_TURNS = 100;

/** Orders events by seq: applies each once, in order, and asks for a fill on a gap. */
export class SeqOrder {
  constructor(apply, onGap) {
    this.apply = apply;
    this.onGap = onGap;
    this.lastSeq = 0;
    this.held = new Map();
  }

  /** Takes an event from anywhere (live or replayed); duplicates are dropped. */
  offer(event) {
    if (!Number.isInteger(event?.seq) || event.seq <= this.lastSeq || this.held.has(event.seq)) return;
    this.held.set(event.seq, event);
    while (this.held.has(this.lastSeq + 1)) {
      const next = this.held.get(this.lastSeq + 1);
      this.held.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      this.apply(next);
    }
    if (this.held.size) this.onGap();
  }

  /** Whether events past a gap are waiting for it to be filled. */
  get gapped() {
    return this.held.size > 0;
  }
}

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/** Whether `element` is on the page, or in the batch about to be put there. */
function attached(element) {
  return Boolean(element && (element.isConnected || element.getRootNode() instanceof DocumentFragment));
}

function marker() {
  const element = node('span', 'marker');
  element.hidden = true;
  return element;
}

function pretty(value) {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return pretty(content);
  return content
    .map((block) => (block?.type === 'text' ? block.text : `[${block?.type ?? 'block'}]`))
    .join('\n');
}

function folded(summary, body, className = 'fold') {
  const details = node('details', className);
  details.append(node('summary', '', summary));
  const pre = node('pre', '', body);
  details.append(pre);
  return details;
}

export function formatUsd(value) {
  return typeof value === 'number' ? `$${value.toFixed(value < 1 ? 4 : 2)}` : '';
}

export class Conversation {
  /**
   * `container`: the log element. `actions.download(path)` saves a workspace file.
   */
  constructor(container, actions) {
    this.container = container;
    this.actions = actions;
    this.turns = [];
    this.dirty = new Set();
    this.frame = 0;
    this.tools = new Map();
    this.count = 0;
    this.earlier = this.earlierTurnsButton();
    this.container.append(this.earlier);
    // Follows the newest event while the reader is at the bottom, also when the log
    // shrinks (a request panel opens below it); a reader who scrolled up stays put.
    this.stick = true;
    container.addEventListener('scroll', () => {
      this.stick = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    });
    new ResizeObserver(() => {
      if (this.stick) container.scrollTop = container.scrollHeight;
    }).observe(container);
  }

  /** Forgets everything: another session is shown. */
  reset() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.turns = [];
    this.dirty.clear();
    this.tools.clear();
    this.count = 0;
    this.stick = true;
    this.earlier = this.earlierTurnsButton();
    this.container.replaceChildren(this.earlier);
  }

  /** The button that puts turns dropped from the page back, a hundred at a time. */
  earlierTurnsButton() {
    const button = node('button', 'more earlier-turns');
    button.type = 'button';
    button.hidden = true;
    button.dataset.hidden = '0';
    button.addEventListener('click', () => {
      const hidden = Number(button.dataset.hidden);
      const from = Math.max(0, hidden - SHOWN_TURNS);
      button.after(...this.turns.slice(from, hidden).map((turn) => turn.details));
      this.setEarlierTurns(from);
    });
    return button;
  }

  setEarlierTurns(hidden) {
    this.earlier.dataset.hidden = String(hidden);
    this.earlier.hidden = hidden === 0;
    this.earlier.textContent = `Show earlier turns (${hidden} not shown)`;
  }

  /** Adds the next event (in seq order); it is rendered at the next frame. */
  add(event) {
    this.count += 1;
    if (event.type === 'input' || !this.turns.length) this.startTurn(event.type === 'input' ? event : null);
    const turn = this.turns[this.turns.length - 1];
    turn.events.push(event);
    this.dirty.add(turn);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  startTurn(input) {
    const index = this.turns.length;
    const details = node('details', 'turn');
    details.open = true;
    const summary = node('summary', 'turn-summary');
    const title = input ? textOf(input.data?.content).split('\n')[0].slice(0, 120) : 'Session start';
    summary.textContent = input ? `Turn ${index}: ${title}` : title;
    const body = node('div', 'turn-body');
    const more = node('button', 'more');
    more.type = 'button';
    more.hidden = true;
    body.append(more);
    details.append(summary, body);
    const turn = { details, body, more, events: [], shownFrom: 0, renderedTo: 0, live: true };
    more.addEventListener('click', () => this.showEarlier(turn));
    details.addEventListener('toggle', () => {
      if (details.open && !turn.live) {
        turn.live = true;
        this.dirty.add(turn);
        this.flush();
      }
    });
    this.turns.push(turn);
    this.container.append(details);
    // Fold the turns that are no longer recent and drop their nodes.
    const open = this.turns.filter((t) => t.live);
    for (const old of open.slice(0, Math.max(0, open.length - OPEN_TURNS))) this.fold(old);
    // Past a limit, the oldest turns leave the page altogether.
    const hidden = Number(this.earlier.dataset.hidden);
    if (this.turns.length - hidden > SHOWN_TURNS * 1.5) {
      const keepFrom = this.turns.length - SHOWN_TURNS;
      for (const old of this.turns.slice(hidden, keepFrom)) {
        this.fold(old);
        old.details.remove();
      }
      this.setEarlierTurns(keepFrom);
    }
  }

  fold(turn) {
    this.updateSummary(turn);
    turn.live = false;
    turn.details.open = false;
    turn.body.replaceChildren(turn.more);
    turn.more.hidden = true;
    turn.shownFrom = 0;
    turn.renderedTo = 0;
    this.dirty.delete(turn);
  }

  /** Renders what arrived since the last frame, keeping the view at the bottom if it was. */
  flush() {
    this.frame = 0;
    const log = this.container;
    for (const turn of this.dirty) {
      this.updateSummary(turn);
      if (!turn.live) continue;
      if (turn.events.length - turn.renderedTo > WINDOW) {
        turn.body.replaceChildren(turn.more);
        turn.renderedTo = turn.events.length - WINDOW;
        turn.shownFrom = turn.renderedTo;
      }
      const fragment = document.createDocumentFragment();
      for (const event of turn.events.slice(turn.renderedTo)) fragment.append(this.render(event, turn));
      turn.renderedTo = turn.events.length;
      turn.body.append(fragment);
      // Keep at most 1.5 windows of nodes; the oldest go.
      let shown = turn.renderedTo - turn.shownFrom;
      if (shown > WINDOW * 1.5) {
        while (shown > WINDOW) {
          const oldest = turn.more.nextElementSibling;
          // A message still streaming stays whole, however many deltas it took.
          if (oldest === turn.stream) break;
          oldest.remove();
          turn.shownFrom += 1;
          shown -= 1;
        }
      }
      this.updateMore(turn);
    }
    this.dirty.clear();
    if (this.stick) log.scrollTop = log.scrollHeight;
  }

  showEarlier(turn) {
    const from = Math.max(0, turn.shownFrom - WINDOW);
    const fragment = document.createDocumentFragment();
    for (const event of turn.events.slice(from, turn.shownFrom)) fragment.append(this.render(event, turn));
    turn.more.after(fragment);
    turn.shownFrom = from;
    this.updateMore(turn);
  }

  updateMore(turn) {
    turn.more.hidden = turn.shownFrom === 0;
    turn.more.textContent = `Show earlier events (${turn.shownFrom} hidden)`;
  }

  updateSummary(turn) {
    const summary = turn.details.firstElementChild;
    summary.dataset.count = `${turn.events.length} events`;
  }

  /** One element for one event. */
  render(event, turn) {
    const element = this.renderKind(event, turn);
    element.dataset.seq = String(event.seq);
    element.title ||= `#${event.seq} · ${event.at ?? ''}`;
    return element;
  }

  renderKind(event, turn) {
    const data = event.data ?? {};
    switch (event.type) {
      case 'status': {
        const text = `Status: ${data.status}${data.reason ? ` (${data.reason})` : ''}`;
        return node('p', `meta status status-${data.status}`, text);
      }
      case 'input': {
        const element = node('div', 'msg user');
        element.append(node('h3', 'who', 'You'));
        const body = node('div', 'md');
        body.innerHTML = renderMarkdown(textOf(data.content));
        element.append(body);
        return element;
      }
      case 'agent':
        return this.renderAgent(data, turn);
      case 'file': {
        const element = node('p', 'meta file');
        const size = typeof data.size === 'number' ? ` (${data.size} bytes)` : '';
        element.append(`File ${data.change}: `);
        if (data.change !== 'deleted') {
          const button = node('button', 'link', data.path);
          button.type = 'button';
          button.setAttribute('aria-label', `Download ${data.path}`);
          button.addEventListener('click', () => this.actions.download(data.path));
          element.append(button);
        } else {
          element.append(node('code', '', data.path));
        }
        element.append(size);
        return element;
      }
      case 'error': {
        const element = node('p', `alert${data.fatal ? ' fatal' : ''}`);
        element.append(node('strong', '', `Error ${data.code}`), `: ${data.message ?? ''}`);
        if (data.path) element.append(` (${data.path})`);
        return element;
      }
      case 'permission':
        return folded(`Approval asked: ${data.tool}`, pretty(data.input), 'fold request');
      case 'question':
        return folded(
          `Question asked: ${(data.questions ?? []).map((q) => q.question).join(' / ')}`,
          pretty(data.questions),
          'fold request',
        );
      case 'answer': {
        const by = data.by ? ` by ${data.by}` : '';
        const why = data.reason ? ` (${data.reason})` : data.message ? ` (${data.message})` : '';
        return node('p', `meta answer answer-${data.outcome}`, `Answer: ${data.outcome}${by}${why}`);
      }
      default:
        return folded(`Event ${event.type}`, pretty(data));
    }
  }

  renderAgent(line, turn) {
    switch (line.type) {
      case 'system':
        if (line.subtype === 'init') {
          return node('p', 'meta', `Agent ready${line.model ? `: ${line.model}` : ''}`);
        }
        return folded(`System: ${line.subtype ?? 'message'}`, pretty(line));
      case 'assistant': {
        if (turn.stream) {
          turn.stream.replaceChildren();
          turn.stream.hidden = true;
          turn.stream = null;
        }
        const element = node('div', 'msg assistant');
        element.append(node('h3', 'who', 'Agent'));
        for (const block of line.message?.content ?? []) element.append(this.renderBlock(block));
        return element;
      }
      case 'user': {
        const content = line.message?.content;
        if (!Array.isArray(content)) return node('p', 'meta', textOf(content));
        const results = content.filter((block) => block?.type === 'tool_result');
        if (!results.length) return node('p', 'meta', textOf(content));
        const standalone = [];
        for (const result of results) {
          const tool = this.tools.get(result.tool_use_id);
          const text = textOf(result.content);
          if (attached(tool)) {
            const slot = tool.querySelector('.tool-result');
            slot.replaceChildren(node('pre', result.is_error ? 'is-error' : '', text));
            tool.classList.add(result.is_error ? 'failed' : 'done');
          } else {
            standalone.push(folded(`Tool result${result.is_error ? ' (error)' : ''}`, text));
          }
        }
        if (!standalone.length) return marker();
        const element = node('div', 'results');
        element.append(...standalone);
        return element;
      }
      case 'result': {
        const parts = [`Turn ended: ${line.subtype ?? 'done'}`];
        if (typeof line.duration_ms === 'number') parts.push(`${(line.duration_ms / 1000).toFixed(1)} s`);
        if (typeof line.total_cost_usd === 'number') parts.push(formatUsd(line.total_cost_usd));
        const usage = line.usage;
        if (usage) parts.push(`${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens`);
        return node('p', `meta result${line.is_error ? ' is-error' : ''}`, parts.join(' · '));
      }
      case 'stream_event': {
        const delta = line.event?.delta;
        if (line.event?.type !== 'content_block_delta' || delta?.type !== 'text_delta') return marker();
        if (attached(turn.stream)) {
          turn.stream.querySelector('.partial-text').append(delta.text ?? '');
          return marker();
        }
        const element = node('div', 'msg assistant partial');
        element.append(node('h3', 'who', 'Agent (typing)'), node('div', 'partial-text', delta.text ?? ''));
        element.setAttribute('aria-busy', 'true');
        turn.stream = element;
        return element;
      }
      default:
        return folded(`Agent: ${line.type ?? 'line'}`, pretty(line));
    }
  }

  renderBlock(block) {
    switch (block?.type) {
      case 'text': {
        const element = node('div', 'md');
        element.innerHTML = renderMarkdown(block.text);
        return element;
      }
      case 'tool_use': {
        const details = node('details', 'fold tool');
        details.append(node('summary', '', `Tool call: ${block.name}`));
        details.append(node('pre', '', pretty(block.input)));
        const slot = node('div', 'tool-result');
        slot.append(node('p', 'hint', 'No result yet.'));
        details.append(slot);
        if (block.id) this.tools.set(block.id, details);
        return details;
      }
      case 'thinking':
        return folded('Thinking', block.thinking ?? '');
      default:
        return folded(`Block ${block?.type ?? '?'}`, pretty(block));
    }
  }
}

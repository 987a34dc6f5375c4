// The requests of the agent that wait for a person: `permission` and `question` events
// without an `answer` yet. Filled from the session object's `pending` on every join and
// kept current by the events; each is a card with the answers docs/protocol.md allows.

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function button(label, onClick, className = '') {
  const element = node('button', className, label);
  element.type = 'button';
  element.addEventListener('click', onClick);
  return element;
}

let counter = 0;

export class PendingRequests {
  /** `answer(requestId, body)` sends `session:answer` and resolves or rejects. */
  constructor(section, list, answer) {
    this.section = section;
    this.list = list;
    this.answer = answer;
    this.requests = new Map();
  }

  reset(envelopes = []) {
    this.requests.clear();
    this.list.replaceChildren();
    for (const envelope of envelopes) this.add(envelope);
    this.update();
  }

  /** Follows an event: requests open, answers close. */
  follow(event) {
    if (event.type === 'permission' || event.type === 'question') this.add(event);
    else if (event.type === 'answer') this.remove(event.data?.requestId);
    else return;
    this.update();
  }

  add(envelope) {
    const id = envelope.data?.requestId;
    if (!id || this.requests.has(id)) return;
    const card = envelope.type === 'question' ? this.questionCard(envelope) : this.permissionCard(envelope);
    card.dataset.requestId = id;
    this.requests.set(id, card);
    this.list.append(card);
  }

  remove(id) {
    this.requests.get(id)?.remove();
    this.requests.delete(id);
  }

  update() {
    this.section.hidden = this.requests.size === 0;
  }

  async send(card, requestId, body) {
    const error = card.querySelector('.error');
    error.textContent = '';
    for (const control of card.querySelectorAll('button')) control.disabled = true;
    try {
      await this.answer(requestId, body);
    } catch (failure) {
      error.textContent = `${failure.code ?? 'error'}: ${failure.message}`;
      for (const control of card.querySelectorAll('button')) control.disabled = false;
    }
  }

  frame(envelope, title) {
    const card = node('section', 'card');
    const heading = node('h4', '', title);
    heading.id = `request-${++counter}`;
    card.setAttribute('aria-labelledby', heading.id);
    card.append(heading);
    if (envelope.data?.expiresAt) {
      card.append(node('p', 'hint', `Waits until ${new Date(envelope.data.expiresAt).toLocaleString()}`));
    }
    return card;
  }

  permissionCard(envelope) {
    const data = envelope.data;
    const card = this.frame(envelope, `Allow ${data.tool}?`);
    if (data.description) card.append(node('p', '', data.description));
    card.append(node('pre', '', JSON.stringify(data.input, null, 2)));
    // The person may change the input the tool runs with.
    const edit = node('details', 'edit');
    edit.append(node('summary', '', 'Edit the input'));
    const editId = `edit-${++counter}`;
    const editLabel = node('label', '', 'Input (JSON object)');
    editLabel.htmlFor = editId;
    const editor = node('textarea');
    editor.id = editId;
    editor.rows = 4;
    editor.value = JSON.stringify(data.input, null, 2);
    const allowEdited = button('Allow with this input', () => {
      let input;
      try {
        input = JSON.parse(editor.value);
      } catch {
        input = null;
      }
      if (!input || typeof input !== 'object' || Array.isArray(input)) {
        card.querySelector('.error').textContent = 'The input must be a JSON object.';
        return;
      }
      this.send(card, data.requestId, { behavior: 'allow', input });
    });
    edit.append(editLabel, editor, allowEdited);
    card.append(edit);
    const id = `deny-${++counter}`;
    const label = node('label', '', 'Reason if denied (optional)');
    label.htmlFor = id;
    const reason = node('input');
    reason.id = id;
    reason.type = 'text';
    const actions = node('div', 'actions');
    actions.append(
      button('Allow', () => this.send(card, data.requestId, { behavior: 'allow' }), 'primary'),
      button('Allow always', () => this.send(card, data.requestId, { behavior: 'allow', always: true })),
      button('Deny', () => {
        const body = { behavior: 'deny' };
        if (reason.value.trim()) body.message = reason.value.trim();
        this.send(card, data.requestId, body);
      }, 'danger'),
    );
    card.append(label, reason, actions, node('p', 'error'));
    card.querySelector('.error').setAttribute('role', 'alert');
    return card;
  }

  questionCard(envelope) {
    const data = envelope.data;
    const card = this.frame(envelope, 'The agent asks');
    const readers = [];
    for (const question of data.questions ?? []) {
      const group = node('fieldset', 'question');
      group.append(node('legend', '', question.header ? `${question.header}: ${question.question}` : question.question));
      const name = `q-${++counter}`;
      const choices = [];
      for (const option of question.options ?? []) {
        const id = `${name}-${choices.length}`;
        const row = node('div', 'choice');
        const input = node('input');
        input.type = question.multiSelect ? 'checkbox' : 'radio';
        input.name = name;
        input.id = id;
        input.value = option.label;
        const label = node('label', '', option.label);
        label.htmlFor = id;
        row.append(input, label);
        if (option.description) row.append(node('span', 'hint', ` ${option.description}`));
        group.append(row);
        choices.push(input);
      }
      const ownId = `${name}-own`;
      const ownLabel = node('label', '', 'Or in your own words');
      ownLabel.htmlFor = ownId;
      const own = node('input');
      own.type = 'text';
      own.id = ownId;
      group.append(ownLabel, own);
      card.append(group);
      readers.push(() => {
        const picked = choices.filter((input) => input.checked).map((input) => input.value);
        const answer = own.value.trim() || picked.join(', ');
        return [question.question, answer];
      });
    }
    const actions = node('div', 'actions');
    actions.append(
      button('Answer', () => {
        const pairs = readers.map((read) => read());
        const missing = pairs.find(([, answer]) => !answer);
        if (missing) {
          card.querySelector('.error').textContent = `Answer "${missing[0]}" first.`;
          return;
        }
        this.send(card, data.requestId, { behavior: 'allow', answers: Object.fromEntries(pairs) });
      }, 'primary'),
      button('Decline', () => this.send(card, data.requestId, { behavior: 'deny' }), 'danger'),
    );
    card.append(actions, node('p', 'error'));
    card.querySelector('.error').setAttribute('role', 'alert');
    return card;
  }
}

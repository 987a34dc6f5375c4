// A form generated from a profile's metadata JSON Schema: one labelled field per
// property of a top-level object schema. Strings are text inputs (a textarea for long
// ones), numbers and integers number inputs, booleans checkboxes, enums selects;
// `required` is marked and enforced. Anything else (nested objects, arrays) is a JSON
// textarea, so every schema can still be filled in.

let counter = 0;

function describe(property) {
  if (Array.isArray(property.enum)) return 'enum';
  const type = Array.isArray(property.type) ? property.type.find((t) => t !== 'null') : property.type;
  if (['string', 'number', 'integer', 'boolean'].includes(type)) return type;
  return 'json';
}

/**
 * Fills `container` with the fields of `schema` and returns a reader: a function that
 * returns the metadata object, or throws an Error naming the first invalid field.
 */
export function buildSchemaForm(container, schema) {
  const legend = document.createElement('legend');
  legend.textContent = 'Metadata';
  container.replaceChildren(legend);
  const properties = schema && typeof schema === 'object' && schema.properties && typeof schema.properties === 'object'
    ? schema.properties
    : null;
  if (!properties || !Object.keys(properties).length) {
    const note = document.createElement('p');
    note.className = 'hint';
    note.textContent = schema ? 'This profile takes no metadata fields.' : 'This profile takes no metadata.';
    container.append(note);
    container.hidden = false;
    return () => undefined;
  }
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const fields = [];
  for (const [name, property] of Object.entries(properties)) {
    const spec = property && typeof property === 'object' ? property : {};
    const kind = describe(spec);
    const id = `meta-${++counter}`;
    const row = document.createElement('div');
    row.className = `field field-${kind}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = spec.title || name;
    if (required.has(name)) {
      const mark = document.createElement('span');
      mark.className = 'required';
      mark.textContent = ' (required)';
      label.append(mark);
    }
    let input;
    if (kind === 'enum') {
      input = document.createElement('select');
      if (!required.has(name)) input.append(new Option('—', ''));
      spec.enum.forEach((value, index) => {
        const option = new Option(String(value), String(index));
        input.append(option);
      });
      if (spec.default !== undefined) {
        const index = spec.enum.findIndex((value) => value === spec.default);
        if (index >= 0) input.value = String(index);
      }
    } else if (kind === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = spec.default === true;
    } else if (kind === 'number' || kind === 'integer') {
      input = document.createElement('input');
      input.type = 'number';
      input.step = kind === 'integer' ? '1' : 'any';
      if (typeof spec.minimum === 'number') input.min = String(spec.minimum);
      if (typeof spec.maximum === 'number') input.max = String(spec.maximum);
      if (typeof spec.default === 'number') input.value = String(spec.default);
    } else if (kind === 'string') {
      const long = (spec.maxLength ?? 0) > 200 || spec.format === 'textarea';
      input = document.createElement(long ? 'textarea' : 'input');
      if (!long) input.type = spec.format === 'email' ? 'email' : spec.format === 'uri' ? 'url' : 'text';
      if (typeof spec.maxLength === 'number') input.maxLength = spec.maxLength;
      if (typeof spec.default === 'string') input.value = spec.default;
    } else {
      input = document.createElement('textarea');
      input.placeholder = 'JSON';
      if (spec.default !== undefined) input.value = JSON.stringify(spec.default);
    }
    input.id = id;
    input.name = name;
    if (required.has(name) && kind !== 'boolean') input.required = true;
    row.append(label, input);
    if (spec.description) {
      const help = document.createElement('p');
      help.className = 'hint';
      help.id = `${id}-help`;
      help.textContent = spec.description;
      input.setAttribute('aria-describedby', help.id);
      row.append(help);
    }
    container.append(row);
    fields.push({ name, kind, spec, input, required: required.has(name) });
  }
  container.hidden = false;
  return () => readFields(fields);
}

function readFields(fields) {
  const metadata = {};
  for (const { name, kind, spec, input, required } of fields) {
    const label = spec.title || name;
    if (kind === 'boolean') {
      metadata[name] = input.checked;
      continue;
    }
    const raw = input.value;
    if (raw === '') {
      if (required) throw fieldError(input, `${label} is required`);
      continue;
    }
    if (kind === 'enum') {
      metadata[name] = spec.enum[Number(raw)];
    } else if (kind === 'number' || kind === 'integer') {
      const value = Number(raw);
      if (!Number.isFinite(value) || (kind === 'integer' && !Number.isInteger(value))) {
        throw fieldError(input, `${label} must be ${kind === 'integer' ? 'a whole number' : 'a number'}`);
      }
      metadata[name] = value;
    } else if (kind === 'string') {
      metadata[name] = raw;
    } else {
      try {
        metadata[name] = JSON.parse(raw);
      } catch {
        throw fieldError(input, `${label} must be JSON`);
      }
    }
  }
  return metadata;
}

function fieldError(input, message) {
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
  return new Error(message);
}

// The open session's workspace files, listed from the REST API; each downloads on click.

import { ApiError, getJson } from './api.js';

/**
 * Lists the files of session `id` into `list`, or says why not in `error`; `download(path)`
 * saves one.
 */
export async function listFiles(id, { list, error, download }) {
  error.textContent = '';
  try {
    const { files } = await getJson(`/v1/sessions/${encodeURIComponent(id)}/files`);
    const items = files.map((file) => {
      const item = document.createElement('li');
      const get = document.createElement('button');
      get.type = 'button';
      get.className = 'link';
      get.textContent = file.path;
      get.setAttribute('aria-label', `Download ${file.path}`);
      get.addEventListener('click', () => download(file.path));
      item.append(get, ` ${file.size} bytes · ${new Date(file.modifiedAt).toLocaleString()}`);
      return item;
    });
    if (!items.length) {
      const empty = document.createElement('li');
      empty.className = 'hint';
      empty.textContent = 'The workspace is empty.';
      items.push(empty);
    }
    list.replaceChildren(...items);
  } catch (failure) {
    error.textContent = failure instanceof ApiError ? `${failure.code}: ${failure.message}` : String(failure);
  }
}

// The console's Markdown renderer, table-driven: what it makes of Markdown, and that
// nothing an agent writes becomes markup of its own. Run with `node --test`
// (`tests/e2e/console.rs` does).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMarkdown } from '../../console/markdown.js';

const cases = [
  ['plain text', 'hello', '<p>hello</p>'],
  ['a heading starts below the page headings', '# Plan', '<h3>Plan</h3>'],
  ['emphasis and code', 'a **b** *c* `d`', '<p>a <strong>b</strong> <em>c</em> <code>d</code></p>'],
  ['no emphasis inside code', '`**x**`', '<p><code>**x**</code></p>'],
  ['snake_case stays', 'a_b_c', '<p>a_b_c</p>'],
  ['lines of a paragraph', 'a\nb\n\nc', '<p>a<br>b</p><p>c</p>'],
  ['a list', '- a\n- b', '<ul><li>a</li><li>b</li></ul>'],
  ['a numbered list', '1. a\n2. b', '<ol><li>a</li><li>b</li></ol>'],
  ['a fenced block keeps its text', '```js\nlet a = "<b>";\n```', '<pre data-language="js"><code>let a = &quot;&lt;b&gt;&quot;;</code></pre>'],
  ['a quote', '> said', '<blockquote>said</blockquote>'],
  ['a link', '[docs](https://example.com/a?b=1&c=2)', '<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer" target="_blank">docs</a></p>'],
  ['a mail link', '[me](mailto:a@example.com)', '<p><a href="mailto:a@example.com" rel="noopener noreferrer" target="_blank">me</a></p>'],
  // What must never become markup.
  ['tags are text', '<script>alert(1)</script>', '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>'],
  ['attributes are text', '<img src=x onerror="alert(1)">', '<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>'],
  ['javascript: links are text', '[x](javascript:alert(1))', '<p>[x](javascript:alert(1))</p>'],
  ['in any case', '[x](JaVaScRiPt:alert(1))', '<p>[x](JaVaScRiPt:alert(1))</p>'],
  ['data: links are text', '[x](data:text/html,hi)', '<p>[x](data:text/html,hi)</p>'],
  ['protocol-relative links are text', '[x](//evil.example)', '<p>[x](//evil.example)</p>'],
  ['entities do not make a scheme', '[x](jav&#x61;script:alert(1))', '<p>[x](jav&amp;#x61;script:alert(1))</p>'],
  ['quotes cannot leave the href', '[x](https://a.example/"onmouseover="alert(1))', '<p><a href="https://a.example/&quot;onmouseover=&quot;alert(1" rel="noopener noreferrer" target="_blank">x</a>)</p>'],
  ['a label is escaped', '[<b>x</b>](https://a.example)', '<p><a href="https://a.example" rel="noopener noreferrer" target="_blank">&lt;b&gt;x&lt;/b&gt;</a></p>'],
  ['a heading is escaped', '# <i>x</i>', '<h3>&lt;i&gt;x&lt;/i&gt;</h3>'],
  ['a fence language is a word or nothing', '```"><script>\nx\n```', '<p>```&quot;&gt;&lt;script&gt;<br>x</p><pre><code></code></pre>'],
];

for (const [name, source, html] of cases) {
  test(name, () => assert.equal(renderMarkdown(source), html));
}

test('every tag it makes is one of its own', () => {
  const allowed = new Set(['p', 'br', 'h3', 'h4', 'h5', 'h6', 'strong', 'em', 'code', 'pre', 'ul', 'ol', 'li', 'blockquote', 'a']);
  const hostile = cases.map(([, source]) => source).join('\n\n');
  for (const [, tag] of renderMarkdown(hostile).matchAll(/<\/?([a-z0-9]+)/g)) {
    assert.ok(allowed.has(tag), `unexpected tag <${tag}>`);
  }
});

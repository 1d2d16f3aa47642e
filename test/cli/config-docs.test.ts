/**
 * docs/config.md documents every option with its default: its option tables
 * are exactly what cli/config/doc-table.ts generates from the options table.
 */
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { optionsMarkdown } from '../../cli/config/doc-table.js';

const DOC = fileURLToPath(new URL('../../../docs/config.md', import.meta.url));

it('docs/config.md carries the generated option tables (node dist/cli/config/doc-table.js)', () => {
  const text = readFileSync(DOC, 'utf8');
  const m = /<!-- options:begin -->\n([\s\S]*?)<!-- options:end -->/.exec(text);
  assert.ok(m !== null, 'docs/config.md lacks the options:begin / options:end markers');
  assert.equal(m[1], optionsMarkdown());
});

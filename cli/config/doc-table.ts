/**
 * The option tables of docs/config.md, generated from the options table so
 * the documentation cannot drift: test/cli/config-docs.test.ts checks that
 * docs/config.md carries exactly this text between its `options:begin` and
 * `options:end` markers. Regenerate with `node dist/cli/config/doc-table.js`.
 */
import { fileURLToPath } from 'node:url';
import { OPTIONS, splitKey, type OptionSpec } from './options-table.js';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The default column: the value as the file writes it, "required", or the computed default. */
export function defaultColumn(o: OptionSpec): string {
  if (o.default === undefined) return o.required === true ? 'required' : (o.defaultDoc ?? 'unset');
  const value = JSON.stringify(o.kind.toToml !== undefined ? o.kind.toToml(o.default) : o.default);
  return o.defaultDoc !== undefined ? `${value} (${o.defaultDoc})` : value;
}

/** Markdown: one table per section, in table order. */
export function optionsMarkdown(): string {
  const out: string[] = [];
  let section = '';
  for (const o of OPTIONS) {
    const [s] = splitKey(o.key);
    if (s !== section) {
      section = s;
      out.push('', `### [${s}]`, '', '| key | roles | kind | default | flag | on SIGHUP | meaning |', '|---|---|---|---|---|---|---|');
    }
    out.push(
      `| \`${o.key}\` | ${o.roles.join(', ')} | ${cell(o.kind.doc)} | ${cell(defaultColumn(o))} | ${o.flag !== undefined ? `\`${o.flag}\`` : ''} | ${o.reload ? 'applied' : 'restart'} | ${cell(o.doc)} |`,
    );
  }
  return `${out.join('\n').trim()}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(optionsMarkdown());

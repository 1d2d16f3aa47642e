/**
 * `promtool check metrics` (Debian package `prometheus`), when installed.
 * .ci/run installs it; elsewhere tests that need it skip with the reason.
 */
import { spawnSync } from 'node:child_process';

/** Why promtool cannot be used here, or null when it can. */
export function promtoolMissing(): string | null {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) return `promtool not installed (Debian package prometheus; .ci/run installs it): ${r.error.message}`;
  return null;
}

/** Run `promtool check metrics` on `text`; returns its exit status and output (problems are printed there). */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

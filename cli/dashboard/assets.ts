/**
 * Static files the dashboards serve, read once (no CDN): uPlot's script and
 * stylesheet from its installed package, and our pages' browser scripts from
 * cli/dashboard/static/ in the package (plain browser JavaScript, not
 * compiled: dist/cli/dashboard/ → ../../../cli/dashboard/static/).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Answer } from '../metrics/server.js';

const require = createRequire(import.meta.url);
let cache: Map<string, Answer> | undefined;

function load(): Map<string, Answer> {
  const uplotDir = join(dirname(require.resolve('uplot/package.json')), 'dist');
  const here = fileURLToPath(new URL('../../../cli/dashboard/', import.meta.url));
  return new Map<string, Answer>([
    ['/uplot.js', { contentType: 'text/javascript; charset=utf-8', body: readFileSync(join(uplotDir, 'uPlot.iife.min.js')) }],
    ['/uplot.css', { contentType: 'text/css; charset=utf-8', body: readFileSync(join(uplotDir, 'uPlot.min.css')) }],
    ['/dashboard.js', { contentType: 'text/javascript; charset=utf-8', body: readFileSync(join(here, 'static', 'dashboard.js')) }],
    ['/network.js', { contentType: 'text/javascript; charset=utf-8', body: readFileSync(join(here, 'static', 'network.js')) }],
    ['/dashboard.css', { contentType: 'text/css; charset=utf-8', body: readFileSync(join(here, 'static', 'dashboard.css')) }],
  ]);
}

/** The asset at `path`, or undefined. */
export function asset(path: string): Answer | undefined {
  cache ??= load();
  return cache.get(path);
}

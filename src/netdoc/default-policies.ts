/**
 * The default exit policies (docs/protocol.md §8.3), in one place: what a
 * relay runs when it is given no explicit policy, and the loopback opening a
 * testnet exit adds. Both defaults begin with `reject private:*`, so neither
 * an exit nor a non-exit ever carries a stream into its own private networks.
 * Rule lines, in the grammar of ./exit-policy.ts.
 */
import { acceptedPorts, MAX_PORT, parseExitPolicy } from './exit-policy.js';

/** Ports Tor's default exit policy rejects: mail, news, Windows networking, file sharing. */
export const DEFAULT_REJECTED_PORTS: readonly string[] = Object.freeze([
  '25',
  '119',
  '135-139',
  '445',
  '563',
  '1214',
  '4661-4666',
  '6346-6429',
  '6699',
  '6881-6999',
]);

/**
 * An exit's default, Tor's order: reject the listed ports, then private
 * ranges, then accept everything else. (The ports come first so that the
 * loopback opening of a testnet, inserted before `reject private:*`, keeps them closed.)
 */
export const DEFAULT_EXIT_POLICY_LINES: readonly string[] = Object.freeze([
  ...DEFAULT_REJECTED_PORTS.map((ports) => `reject *:${ports}`),
  'reject private:*',
  'accept *:*',
]);

/**
 * A non-exit's policy: it refuses every BEGIN anyway; the policy says so in
 * its descriptor. `reject private:*` is spelled out, as in every default, so
 * the relay's own networks stay refused if the last rule is ever loosened.
 */
export const NON_EXIT_POLICY_LINES: readonly string[] = Object.freeze(['reject private:*', 'reject *:*']);

/** The rules a testnet exit (`--allow-loopback-exit`) adds: IPv4 and IPv6 loopback. */
export const LOOPBACK_EXIT_RULES: readonly string[] = Object.freeze(['accept 127.0.0.0/8:*', 'accept [::1]:*']);

/**
 * `lines` with `rules` put just before the first `reject private` rule (at
 * the start when there is none), so port rejections listed before it still
 * apply to what `rules` open. Testnets only: opening loopback, or a testnet's
 * own private range.
 */
export function withAcceptsBeforePrivate(lines: readonly string[], rules: readonly string[]): string[] {
  const out = [...lines];
  const at = out.findIndex((rule) => /^reject private:/.test(rule));
  out.splice(at < 0 ? 0 : at, 0, ...rules);
  return out;
}

/**
 * `lines` opened to loopback destinations on the ports they allow, no
 * others. Testnets only. With a `reject private` rule: LOOPBACK_EXIT_RULES
 * just before it (withAcceptsBeforePrivate), so the port rejections above
 * it still apply. Without one (an operator's own policy such as `accept *:80,
 * reject *:*`): loopback accepts for exactly the ports the policy allows a
 * public address, first, so opening loopback never opens a port the policy
 * closes (nor widens the consensus summary past it). Throws DocumentError
 * for a bad rule, as parseExitPolicy.
 */
export function withLoopbackExit(lines: readonly string[]): string[] {
  if (lines.some((rule) => /^reject private:/.test(rule))) return withAcceptsBeforePrivate(lines, LOOPBACK_EXIT_RULES);
  const ports = acceptedPorts(parseExitPolicy(lines)).map(([a, b]) => (a === 1 && b === MAX_PORT ? '*' : a === b ? String(a) : `${a}-${b}`));
  return [...ports.flatMap((p) => LOOPBACK_EXIT_RULES.map((rule) => rule.replace(/:\*$/, `:${p}`))), ...lines];
}

/** A testnet exit's default: the default exit policy that also reaches loopback. */
export const TESTNET_EXIT_POLICY_LINES: readonly string[] = Object.freeze(withLoopbackExit(DEFAULT_EXIT_POLICY_LINES));

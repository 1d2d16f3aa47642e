/**
 * Choosing a path around relays that failed recently (docs/protocol.md
 * §11.4): the relays RelayStatus avoids are left out of every position while
 * a path without them exists. When none does, the avoided relays whose last
 * failure is oldest are let back first, 1, 2, 4, ... of them, so a relay
 * that keeps failing now (it is down) is the last one tried again, rather
 * than all of them at once. With every one let back, what the chooser throws
 * (ERR_NO_PATH) is thrown.
 */
import { hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import type { PathRelay } from './path-selection.js';
import type { RelayStatus } from './relay-status.js';

/**
 * A path from `choose`, called with the relays to avoid (at most
 * 2 + log2(avoided) times). `relays` are the consensus's; `status` says which
 * are avoided and since when. Throws what `choose` throws other than
 * ERR_NO_PATH at once, and ERR_NO_PATH once no relay is avoided any more.
 */
export function choosePathAvoiding(
  relays: readonly PathRelay[],
  status: Pick<RelayStatus, 'isAvoided' | 'failedAt'>,
  choose: (avoid: (relay: PathRelay) => boolean) => PathRelay[],
): PathRelay[] {
  const avoided = relays
    .filter((r) => status.isAvoided(r))
    .map((r) => ({ id: hex(r.identity), at: status.failedAt(r) ?? 0 }))
    .sort((a, b) => a.at - b.at);
  // The oldest `allowed` failures are let back; the rest stay avoided.
  for (let allowed = 0; ; allowed = allowed === 0 ? 1 : Math.min(avoided.length, allowed * 2)) {
    const still = new Set(avoided.slice(allowed).map((a) => a.id));
    try {
      return choose((r) => still.size > 0 && still.has(hex(r.identity)));
    } catch (error) {
      if (!(error instanceof AlliumError) || error.code !== 'ERR_NO_PATH' || allowed >= avoided.length) throw error;
    }
  }
}

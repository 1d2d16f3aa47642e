/**
 * A consensus entry for path-selection tests: random keys, the given address,
 * flags (sorted), bandwidth and exit summary. No side effects at import.
 */
import type { ConsensusRelay } from '../../src/netdoc/consensus.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { crypto } from '../../src/crypto/crypto.js';

export const ALL_PORTS = 'accept 1-65535';
export const NO_PORTS = 'reject 1-65535';

export function consensusRelay(nickname: string, address: string, flags: string[], bandwidth = 1000, summary = NO_PORTS): ConsensusRelay {
  return {
    nickname,
    identity: crypto.randomBytes(32),
    address,
    orPort: 9001,
    linkKey: crypto.randomBytes(32),
    ntorOnionKey: crypto.randomBytes(32),
    descriptorDigest: crypto.randomBytes(32),
    flags: [...flags].sort(),
    bandwidth,
    exitSummary: parseSummary(summary),
  };
}

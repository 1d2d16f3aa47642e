/**
 * A relay's long-term keys, kept in <dataDir>/keys with mode 0600:
 * the Ed25519 identity, the X25519 link key (its Noise static key) and the
 * X25519 ntor onion key.
 */
import { join } from 'node:path';
import { crypto } from '../src/crypto/crypto.js';
import { loadOrCreateSecret } from '../src/key-file.js';
import type { LinkIdentity, StaticKey } from '../src/link/channel.js';
import type { NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';

export interface RelayKeys {
  identity: LinkIdentity;
  linkKey: StaticKey;
  ntor: NtorV3RelaySecret;
}

export function loadRelayKeys(dataDir: string): RelayKeys {
  const dir = join(dataDir, 'keys');
  const seed = loadOrCreateSecret(join(dir, 'identity_ed25519'), () => crypto.randomBytes(32));
  const linkSecret = loadOrCreateSecret(join(dir, 'link_x25519'), () => crypto.randomBytes(32));
  const ntorSecret = loadOrCreateSecret(join(dir, 'ntor_x25519'), () => crypto.randomBytes(32));
  const identity = crypto.ed25519PublicKey(seed);
  return {
    identity: { seed, identity },
    linkKey: { secret: linkSecret, public: crypto.x25519PublicKey(linkSecret) },
    ntor: { identity, onionKey: crypto.x25519PublicKey(ntorSecret), onionSecret: ntorSecret },
  };
}

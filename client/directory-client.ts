/**
 * The client's view of consensus fetching (docs/protocol.md §11): from the
 * authorities over HTTP (src/dirclient/consensus-fetch.ts, shared with
 * relays that cache the consensus) and through a relay's directory cache
 * (dir-via-relay.ts).
 */
export { ConsensusFetchError, fetchConsensus, MAX_CONSENSUS_BYTES, type AuthorityRef, type FetchConsensusOptions, type FetchedConsensus } from '../src/dirclient/consensus-fetch.js';

/**
 * Every fuzz target, in the order `npm run fuzz` runs them, and the corpus
 * each contributes (fuzz/corpus.ts).
 */
import type { FuzzInput, FuzzTarget } from '../engine.js';
import { channelCellTarget, makeCellCorpus, ntorExtensionsTarget, relayCellTarget, relayMsgTarget } from './cells.js';
import { authorityUploadTarget, dirHttpTarget, makeDirectoryCorpus } from './directory.js';
import { linkCertificateTarget, linkFramesTarget, linkHandshakeTarget, makeLinkCorpus, ntorServerTarget } from './link.js';
import {
  addressTarget,
  authorityCertTarget,
  consensusTarget,
  descriptorTarget,
  detachedSignatureTarget,
  exitPolicyTarget,
  exitSummaryTarget,
  makeNetdocCorpus,
  paramsTarget,
  voteTarget,
} from './netdoc.js';
import { makeSocksCorpus, socks4Target, socks5Target } from './socks.js';
import { httpTunnelTarget, makeHttpTunnelCorpus } from './http-tunnel.js';
import { controlPortTarget, makeControlCorpus } from './control.js';
import { configFileTarget, makeConfigCorpus } from './config.js';
import { consensusDiffTarget, makeConsensusDiffCorpus } from './consensus-diff.js';

export const TARGETS: readonly FuzzTarget<FuzzInput>[] = [
  linkFramesTarget,
  linkHandshakeTarget,
  linkCertificateTarget,
  channelCellTarget,
  relayCellTarget,
  relayMsgTarget,
  ntorExtensionsTarget,
  ntorServerTarget,
  socks5Target,
  socks4Target,
  httpTunnelTarget,
  controlPortTarget,
  descriptorTarget,
  consensusTarget,
  consensusDiffTarget,
  voteTarget,
  detachedSignatureTarget,
  authorityCertTarget,
  exitPolicyTarget,
  exitSummaryTarget,
  paramsTarget,
  addressTarget,
  authorityUploadTarget,
  dirHttpTarget,
  configFileTarget,
] as FuzzTarget<FuzzInput>[];

export function targetNamed(name: string): FuzzTarget<FuzzInput> | undefined {
  return TARGETS.find((t) => t.name === name);
}

/** The whole seed corpus, by target name (deterministic). */
export function makeCorpus(): Record<string, FuzzInput[]> {
  return { ...makeCellCorpus(), ...makeLinkCorpus(), ...makeSocksCorpus(), ...makeHttpTunnelCorpus(), ...makeControlCorpus(), ...makeNetdocCorpus(), ...makeDirectoryCorpus(), ...makeConfigCorpus(), ...makeConsensusDiffCorpus() };
}

/**
 * Every configuration option of every role, once: its key in the TOML file
 * (`section.name`), the roles that read it, its kind (./kinds.ts), default,
 * command-line flag, whether SIGHUP can change it without a restart, and a
 * one-line description. The file schema (./schema.ts), the flags
 * (./flags.ts), `--print-config`, SIGHUP and docs/config.md all come from
 * this table; test/cli/config-docs.test.ts checks that docs/config.md names
 * every key with its default.
 *
 * Names follow torrc where Tor has the option (Nickname → relay.nickname,
 * ORPort → relay.or_port, ExitPolicy → relay.exit_policy, DataDirectory →
 * storage.data_dir, SocksPort → socks.port, DirAuthority → network.authorities).
 */
import * as k from './kinds.js';
import { DOS_DEFAULTS } from '../../relay/dos.js';

/** The default lifetime of an authority signing key certificate: 30 days. */
export const DEFAULT_SIGNING_KEY_LIFETIME_MS = 30 * 86_400_000;
/** The longest lifetime a signing key certificate may state (docs/protocol.md §8.6): 400 days. */
export const MAX_SIGNING_KEY_LIFETIME_MS = 400 * 86_400_000;

export type Role = 'relay' | 'authority' | 'client';
export const ROLES: readonly Role[] = ['relay', 'authority', 'client'];

export interface OptionSpec<T = unknown> {
  /** `section.name` in the TOML file. */
  key: string;
  roles: readonly Role[];
  kind: k.Kind<T>;
  /** The value when neither the file nor a flag sets it; absent: unset (see defaultDoc). */
  default?: T;
  /** docs/config.md's default column when `default` is absent or computed. */
  defaultDoc?: string;
  /** The role cannot start without it. */
  required?: boolean;
  /** Commander flag text, e.g. `--nickname <name>`. */
  flag?: string;
  /** True: SIGHUP applies a new value to the running node. */
  reload: boolean;
  doc: string;
}

function opt<T>(spec: OptionSpec<T>): OptionSpec {
  return spec as unknown as OptionSpec;
}

/** The table. Order is the order of --print-config and docs/config.md. */
export const OPTIONS: readonly OptionSpec[] = [
  // [storage]
  opt({
    key: 'storage.data_dir', roles: ['relay', 'authority'], kind: k.path, required: true, flag: '--data-dir <dir>', reload: false,
    doc: 'directory for keys and state (created 0700; key files 0600). torrc: DataDirectory',
  }),
  opt({
    key: 'storage.data_dir', roles: ['client'], kind: k.path, defaultDoc: 'none: guards and build times kept in memory', flag: '--data-dir <dir>', reload: false,
    doc: 'directory for the client\'s state file (guards, learned build times; created 0700, file 0600). torrc: DataDirectory',
  }),

  // [network]
  opt({
    key: 'network.authorities', roles: ['relay', 'client'], kind: k.authorities, required: true, flag: '--authority <url#identityhex>', reload: false,
    doc: 'directory authorities: where a relay publishes its descriptor and a client fetches the consensus (repeatable flag). torrc: DirAuthority',
  }),
  opt({
    key: 'network.authorities', roles: ['authority'], kind: k.authorities, defaultDoc: 'none: this authority votes alone', flag: '--authority <url#identityhex>', reload: false,
    doc: 'the authorities that vote with this one (this one may be listed too; repeatable flag; not with network.authorities_file). torrc: DirAuthority',
  }),
  opt({
    key: 'network.authorities_file', roles: ['authority'], kind: k.path, defaultDoc: 'none', flag: '--authorities-file <file>', reload: false,
    doc: 'a file of "URL#IDENTITYHEX" lines, one per voting authority, re-read when it changes (instead of network.authorities)',
  }),

  // [relay]
  opt({ key: 'relay.nickname', roles: ['relay'], kind: k.nickname, required: true, flag: '--nickname <name>', reload: false, doc: 'the relay\'s nickname. torrc: Nickname' }),
  opt({
    key: 'relay.address', roles: ['relay'], kind: k.ipv4, default: '127.0.0.1', flag: '--address <ipv4>', reload: false,
    doc: 'IPv4 address advertised in the descriptor; also listened on and dialled from unless relay.listen_address. torrc: Address',
  }),
  opt({ key: 'relay.or_port', roles: ['relay'], kind: k.port, default: 0, flag: '--port <port>', reload: false, doc: 'OR port, advertised and (unless relay.listen_port) listened on; 0 = any free port. torrc: ORPort' }),
  opt({
    key: 'relay.listen_address', roles: ['relay'], kind: k.ipv4, defaultDoc: 'relay.address', flag: '--listen-address <ipv4>', reload: false,
    doc: 'address the OR port listens on and links are dialled from, when relay.address is a NAT\'s public address. torrc: ORPort ... NoAdvertise',
  }),
  opt({
    key: 'relay.ipv6_address', roles: ['relay'], kind: k.ipv6, defaultDoc: 'none (IPv4 only)', flag: '--ipv6-address <ipv6>', reload: false,
    doc: 'a second OR port on this IPv6 address, listened on and advertised (or-address); relays extend over it when IPv4 fails. torrc: ORPort [addr]:port',
  }),
  opt({
    key: 'relay.ipv6_port', roles: ['relay'], kind: k.port, defaultDoc: 'relay.or_port', flag: '--ipv6-port <port>', reload: false,
    doc: 'port of the IPv6 OR port (0 = any free port)',
  }),
  opt({
    key: 'relay.listen_port', roles: ['relay'], kind: k.port, defaultDoc: 'relay.or_port', flag: '--listen-port <port>', reload: false,
    doc: 'port the OR port listens on when a port forward maps relay.or_port to it (0 = any free port). torrc: ORPort ... NoAdvertise',
  }),
  opt({
    key: 'relay.reachability_timeout', roles: ['relay'], kind: k.duration(0), default: 600_000, flag: '--reachability-timeout <ms>', reload: false,
    doc: 'stop with an error if the relay is not in the authorities\' consensus (so they could not reach relay.address:or_port) within this time; 0 = do not check',
  }),
  opt({ key: 'relay.exit', roles: ['relay'], kind: k.bool, default: false, flag: '--exit', reload: false, doc: 'act as an exit relay (opens streams to destinations)' }),
  opt({
    key: 'relay.exit_policy', roles: ['relay'], kind: k.exitPolicy, defaultDoc: 'Tor\'s default exit policy for an exit, "reject *:*" otherwise', flag: '--exit-policy <rule>', reload: true,
    doc: 'exit policy rules, first match wins (repeatable flag); needs relay.exit. torrc: ExitPolicy',
  }),
  opt({
    key: 'relay.allow_loopback_exit', roles: ['relay'], kind: k.bool, default: false, flag: '--allow-loopback-exit', reload: false,
    doc: 'with relay.exit, accept loopback destinations on the ports the exit policy allows (ahead of "reject private:*"; testnets only)',
  }),
  opt({
    key: 'relay.contact', roles: ['relay'], kind: k.contact, defaultDoc: 'none', flag: '--contact <text>', reload: true,
    doc: 'how to reach the operator, published in the descriptor. torrc: ContactInfo',
  }),
  opt({
    key: 'relay.family', roles: ['relay'], kind: k.identities, defaultDoc: 'none', flag: '--family <identityhex>', reload: true,
    doc: 'identities of the other relays you run (repeatable flag); a family counts only between relays that list each other. torrc: MyFamily',
  }),
  opt({
    key: 'relay.onion_key_lifetime', roles: ['relay'], kind: k.duration(5_000, 365 * 86_400_000), default: 28 * 86_400_000, flag: '--onion-key-lifetime <duration>', reload: false,
    doc: 'rotate the ntor onion key when it is this old (docs/protocol.md §8.2.2)',
  }),
  opt({
    key: 'relay.onion_key_grace', roles: ['relay'], kind: k.duration(1_000, 365 * 86_400_000), default: 7 * 86_400_000, flag: '--onion-key-grace <duration>', reload: false,
    doc: 'keep accepting the previous onion key this long after a rotation, for clients with an older consensus',
  }),
  opt({
    key: 'relay.signing_key_lifetime', roles: ['relay'], kind: k.duration(1000, MAX_SIGNING_KEY_LIFETIME_MS), default: DEFAULT_SIGNING_KEY_LIFETIME_MS, flag: '--signing-key-lifetime <duration>', reload: false,
    doc: 'lifetime of the signing key certificates the relay makes itself while its identity key is in the data directory (docs/protocol.md §8.2.3). torrc: SigningKeyLifetime',
  }),
  opt({
    key: 'relay.publish_interval', roles: ['relay'], kind: k.duration(1000), default: 600_000, flag: '--publish-interval <ms>', reload: false,
    doc: 'time between descriptor uploads',
  }),

  opt({
    key: 'relay.workers', roles: ['relay'], kind: k.count(1, 256), defaultDoc: 'the number of cores', flag: '--workers <n>', reload: false,
    doc: 'worker processes carrying the links (1: everything in one process); all links of one remote address go to one worker; bandwidth.rate/burst are shared among them by use and relay.max_mem_in_queues divided equally',
  }),
  opt({
    key: 'relay.max_mem_in_queues', roles: ['relay'], kind: k.bytes(1024 * 1024), defaultDoc: '1/8 of RAM, within 64 MiB..4 GiB', flag: '--max-mem-in-queues <size>', reload: false,
    doc: 'memory cap for queued cells and stream buffers; above it the circuits with the oldest queued data are freed (docs/protocol.md §3.6). torrc: MaxMemInQueues',
  }),

  opt({
    key: 'relay.congestion_control', roles: ['relay'], kind: k.bool, default: true, flag: '--no-congestion-control', reload: false,
    doc: 'answer clients that ask for congestion control (docs/protocol.md §7.2); false: every circuit hop here keeps fixed SENDME windows (cc_alg=0)',
  }),

  // [link]: wide-area emulation for testnets (docs/testnet.md "Latency and bandwidth")
  opt({
    key: 'link.delay', roles: ['relay', 'client'], kind: k.delayMs, defaultDoc: 'none', flag: '--link-delay <ms>', reload: false,
    doc: 'one-way delay added to every link this node dials (a relay: to other relays; a client: to its guards), each direction, emulated in user space',
  }),
  opt({
    key: 'link.jitter', roles: ['relay', 'client'], kind: k.delayMs, defaultDoc: 'none', flag: '--link-jitter <ms>', reload: false,
    doc: 'uniform jitter on link.delay, ± ms (bytes are never reordered)',
  }),
  opt({
    key: 'link.rate', roles: ['relay', 'client'], kind: k.mbit, defaultDoc: 'unlimited', flag: '--link-rate <mbit>', reload: false,
    doc: 'line rate of every link this node dials, Mbit/s each direction',
  }),

  // [dos]
  opt({
    key: 'dos.max_links_per_address', roles: ['relay'], kind: k.count(0, 1_000_000), default: DOS_DEFAULTS.maxLinksPerAddress, flag: '--max-links-per-address <n>', reload: false,
    doc: 'connections one address may hold open, relay-wide; the excess is closed at accept (0: no limit). torrc: DoSConnectionMaxConcurrentCount',
  }),
  opt({
    key: 'dos.circuit_rate', roles: ['relay'], kind: k.count(1, 1_000_000), default: DOS_DEFAULTS.circuitRate, flag: '--circuit-rate <n>', reload: false,
    doc: `CREATE2 per second per address holding ${DOS_DEFAULTS.circuitMinLinks}+ links, relay-wide (with workers, every link of one address goes to one worker); past it DESTROY RESOURCELIMIT. torrc: DoSCircuitCreationRate`,
  }),
  opt({
    key: 'dos.circuit_burst', roles: ['relay'], kind: k.count(1, 1_000_000), default: DOS_DEFAULTS.circuitBurst, flag: '--circuit-burst <n>', reload: false,
    doc: 'CREATE2 such an address may save up. torrc: DoSCircuitCreationBurst',
  }),
  opt({
    key: 'dos.begin_rate', roles: ['relay'], kind: k.count(1, 1_000_000), default: DOS_DEFAULTS.beginRate, flag: '--begin-rate <n>', reload: false,
    doc: 'at an exit, BEGIN and RESOLVE per second per circuit; past it END RESOURCELIMIT on that stream',
  }),
  opt({
    key: 'dos.begin_burst', roles: ['relay'], kind: k.count(1, 1_000_000), default: DOS_DEFAULTS.beginBurst, flag: '--begin-burst <n>', reload: false,
    doc: 'BEGIN and RESOLVE a circuit may save up (at least dos.begin_rate)',
  }),
  opt({
    key: 'dos.max_streams_per_circuit', roles: ['relay'], kind: k.count(1, 65_535), default: DOS_DEFAULTS.maxStreamsPerCircuit, flag: '--max-streams-per-circuit <n>', reload: false,
    doc: 'open streams per circuit at an exit; past it END RESOURCELIMIT on the new stream',
  }),
  opt({
    key: 'dos.handshake_timeout', roles: ['relay'], kind: k.duration(1000, 600_000), default: DOS_DEFAULTS.handshakeTimeoutMs, flag: '--handshake-timeout <duration>', reload: false,
    doc: 'time a link may take from its TCP connection to the end of its handshake (accepted or dialled); past it the connection is closed',
  }),

  // [bandwidth]
  opt({
    key: 'bandwidth.rate', roles: ['relay'], kind: k.bytes(1000), defaultDoc: 'unlimited', flag: '--bandwidth-rate <size>', reload: true,
    doc: 'average bytes per second the relay reads from all its links together (token bucket); also advertised. torrc: BandwidthRate',
  }),
  opt({
    key: 'bandwidth.burst', roles: ['relay'], kind: k.bytes(1000), defaultDoc: 'bandwidth.rate', flag: '--bandwidth-burst <size>', reload: true,
    doc: 'largest burst, bytes (the bucket size, at least the rate). torrc: BandwidthBurst',
  }),

  // [accounting]
  opt({
    key: 'accounting.max', roles: ['relay'], kind: k.bytes(1_000_000), defaultDoc: 'off', flag: '--accounting-max <size>', reload: false,
    doc: 'bytes the relay may carry per period (counted by accounting.rule), then it hibernates until the next period. torrc: AccountingMax',
  }),
  opt({
    key: 'accounting.period', roles: ['relay'], kind: k.duration(60_000, 31 * 86_400_000), default: 86_400_000, flag: '--accounting-period <duration>', reload: false,
    doc: 'length of an accounting period; periods start at multiples of it since the Unix epoch (a day: UTC midnight). torrc: AccountingStart',
  }),
  opt({
    key: 'accounting.rule', roles: ['relay'], kind: k.oneOf(['max', 'sum']), default: 'max', flag: '--accounting-rule <rule>', reload: false,
    doc: 'max: the larger of bytes read and written counts; sum: both. torrc: AccountingRule',
  }),

  // [authority]
  opt({ key: 'authority.nickname', roles: ['authority'], kind: k.nickname, required: true, flag: '--nickname <name>', reload: false, doc: 'the authority\'s nickname' }),
  opt({
    key: 'authority.address', roles: ['authority'], kind: k.ipv4, default: '127.0.0.1', flag: '--address <ipv4>', reload: false,
    doc: 'IPv4 address of the directory HTTP server, also the address published for this authority. torrc: Address',
  }),
  opt({ key: 'authority.dir_port', roles: ['authority'], kind: k.port, default: 0, flag: '--port <port>', reload: false, doc: 'directory HTTP port (0 = any free port). torrc: DirPort' }),
  opt({
    key: 'authority.voting_interval', roles: ['authority'], kind: k.wholeSeconds(1000), default: 60_000, flag: '--voting-interval <ms>', reload: false,
    doc: 'time between consensuses, a whole number of seconds (docs/protocol.md §9). torrc: V3AuthVotingInterval',
  }),
  opt({
    key: 'authority.consensus_lifetime', roles: ['authority'], kind: k.wholeSeconds(1000), defaultDoc: '3 voting intervals, at least 1 minute', flag: '--consensus-lifetime <ms>', reload: false,
    doc: 'how long each consensus stays valid, a whole number of seconds',
  }),
  opt({
    key: 'authority.signing_key_lifetime', roles: ['authority'], kind: k.duration(1000, MAX_SIGNING_KEY_LIFETIME_MS), default: DEFAULT_SIGNING_KEY_LIFETIME_MS, flag: '--signing-key-lifetime <ms>', reload: false,
    doc: 'lifetime of the signing key certificate made when the data directory has none (docs/protocol.md §8.6; at most 400 days)',
  }),
  opt({
    key: 'authority.bad_exits', roles: ['authority'], kind: k.identities, defaultDoc: 'none', flag: '--bad-exit <identityhex>', reload: false,
    doc: 'relays this authority votes BadExit (repeatable flag); with any, the authority votes on BadExit. torrc: AuthDirBadExit',
  }),
  opt({
    key: 'authority.measure_interval', roles: ['authority'], kind: k.duration(1000), default: 3_600_000, flag: '--measure-interval <ms>', reload: false,
    doc: 'measure each relay\'s bandwidth again after this long',
  }),
  opt({
    key: 'authority.testnet_flag_thresholds', roles: ['authority'], kind: k.bool, default: false, flag: '--testnet-flag-thresholds', reload: false,
    doc: 'flag thresholds for a network minutes old: Stable and HSDir after 30 s (testnets only). torrc: TestingTorNetwork',
  }),
  opt({
    key: 'authority.exits_allow_loopback', roles: ['authority'], kind: k.bool, default: false, flag: '--exits-allow-loopback', reload: false,
    doc: 'count relays whose exit policy accepts loopback as exits (testnets only)',
  }),

  opt({
    key: 'authority.params', roles: ['authority'], kind: k.networkParams, defaultDoc: 'none: the defaults of docs/protocol.md §8.5', flag: '--param <key=value>', reload: false,
    doc: 'network parameters to publish in the consensus params line, e.g. "cc_alg=0" (repeatable flag; a repeated key: the last wins)',
  }),

  // [socks]
  opt({ key: 'socks.address', roles: ['client'], kind: k.ipv4, default: '127.0.0.1', flag: '--socks-address <ipv4>', reload: false, doc: 'IPv4 address of the SOCKS listener. torrc: SocksPort' }),
  opt({ key: 'socks.port', roles: ['client'], kind: k.port, default: 9050, flag: '--socks-port <port>', reload: false, doc: 'SOCKS5/SOCKS4/SOCKS4a port (0 = any free port). torrc: SocksPort' }),

  // [http_tunnel]
  opt({
    key: 'http_tunnel.port', roles: ['client'], kind: k.port, defaultDoc: 'off', flag: '--http-tunnel-port <port>', reload: false,
    doc: 'HTTP CONNECT tunnel port on 127.0.0.1 (0 = any free port). torrc: HTTPTunnelPort',
  }),

  // [control]
  opt({
    key: 'control.port', roles: ['client'], kind: k.port, defaultDoc: 'off', flag: '--control-port <port>', reload: false,
    doc: 'control port on 127.0.0.1, Tor\'s control protocol (docs/control-port.md; 0 = any free port); needs control.cookie_auth_file or control.hashed_passwords. torrc: ControlPort',
  }),
  opt({
    key: 'control.cookie_auth_file', roles: ['client'], kind: k.path, defaultDoc: 'none', flag: '--cookie-auth-file <path>', reload: false,
    doc: 'cookie authentication: write a fresh 32-byte cookie here (mode 0600). torrc: CookieAuthentication, CookieAuthFile',
  }),
  opt({
    key: 'control.hashed_passwords', roles: ['client'], kind: k.hashedPasswords, defaultDoc: 'none', flag: '--hashed-control-password <16:hex>', reload: false,
    doc: 'password authentication, as `tor --hash-password` prints (repeatable flag). torrc: HashedControlPassword',
  }),

  // [client]
  opt({
    key: 'client.ready_timeout', roles: ['client'], kind: k.duration(1000), default: 120_000, flag: '--ready-timeout <ms>', reload: false,
    doc: 'give up if no 3-hop circuit is built within this time after start',
  }),
  opt({
    key: 'client.circuit_build_timeout', roles: ['client'], kind: k.duration(100), defaultDoc: 'learned from build times (at most 10 s until 20 builds)', flag: '--circuit-build-timeout <ms>', reload: false,
    doc: 'a fixed time limit for building one circuit, instead of the learned one. torrc: CircuitBuildTimeout',
  }),
  opt({
    key: 'client.isolate_dest_addr', roles: ['client'], kind: k.bool, default: false, flag: '--isolate-dest-addr', reload: false,
    doc: 'streams to different hosts never share a circuit. torrc: SocksPort ... IsolateDestAddr',
  }),
  opt({
    key: 'client.isolate_dest_port', roles: ['client'], kind: k.bool, default: false, flag: '--isolate-dest-port', reload: false,
    doc: 'streams to different ports never share a circuit. torrc: SocksPort ... IsolateDestPort',
  }),
  opt({
    key: 'client.prefer_ipv6', roles: ['client'], kind: k.bool, default: false, flag: '--prefer-ipv6', reload: false,
    doc: 'reach guards at their IPv6 OR address and ask relays that both have one to extend over IPv6. torrc: ClientPreferIPv6ORPort',
  }),
  opt({
    key: 'client.max_circuit_dirtiness', roles: ['client'], kind: k.duration(1000), defaultDoc: '10 minutes', flag: '--max-circuit-dirtiness <ms>', reload: false,
    doc: 'a circuit takes no new streams this long after its first. torrc: MaxCircuitDirtiness',
  }),
  opt({
    key: 'client.max_mem_in_queues', roles: ['client'], kind: k.bytes(1024 * 1024), defaultDoc: '64 MiB', flag: '--max-mem-in-queues <size>', reload: false,
    doc: 'memory cap for what SOCKS and tunnel streams hold (their buffers and their sockets\'); above it the streams holding the oldest data are ended (docs/protocol.md §3.6). torrc: MaxMemInQueues',
  }),

  // [metrics]
  opt({
    key: 'metrics.port', roles: ['relay', 'authority', 'client'], kind: k.port, defaultDoc: 'off', flag: '--metrics-port <port>', reload: false,
    doc: 'serve Prometheus metrics at /metrics and the dashboard at / on this port (0 = any free port). torrc: MetricsPort',
  }),
  opt({
    key: 'metrics.address', roles: ['relay', 'authority', 'client'], kind: k.ip, default: '127.0.0.1', flag: '--metrics-address <ip>', reload: false,
    doc: 'address of the metrics listener; one that is not loopback needs metrics.allow',
  }),
  opt({
    key: 'metrics.allow', roles: ['relay', 'authority', 'client'], kind: k.prefixes, defaultDoc: 'loopback only (127.0.0.0/8, ::1)', flag: '--metrics-allow <prefix>', reload: true,
    doc: 'client addresses that may read the metrics and the dashboard; others get 403 (repeatable flag). torrc: MetricsPortPolicy',
  }),

  // [log]
  opt({
    key: 'log.level', roles: ['relay', 'authority', 'client'], kind: k.oneOf(['debug', 'info', 'notice', 'warn', 'err']), default: 'notice', flag: '--log-level <level>', reload: true,
    doc: 'least severe level logged: debug, info, notice, warn, err. torrc: Log',
  }),
  opt({
    key: 'log.destination', roles: ['relay', 'authority', 'client'], kind: k.oneOf(['stderr', 'file']), default: 'stderr', flag: '--log-destination <where>', reload: true,
    doc: 'where log lines go: stderr, or the file log.file',
  }),
  opt({
    key: 'log.file', roles: ['relay', 'authority', 'client'], kind: k.path, defaultDoc: '<storage.data_dir>/<role>.log (a client has no default)', flag: '--log-file <path>', reload: true,
    doc: 'log file when log.destination is "file" (created 0600, appended to)',
  }),
  opt({
    key: 'log.format', roles: ['relay', 'authority', 'client'], kind: k.oneOf(['text', 'json']), default: 'text', flag: '--log-format <format>', reload: true,
    doc: 'text: one human-readable line per event; json: one JSON object per line (pino)',
  }),
  opt({
    key: 'log.safe_logging', roles: ['relay', 'authority', 'client'], kind: k.bool, default: true, reload: true,
    doc: 'replace addresses other than this node\'s own (destinations, clients, peers) by [scrubbed]. torrc: SafeLogging',
  }),
];

/** The options `role` reads, in table order. */
export function optionsOf(role: Role): OptionSpec[] {
  return OPTIONS.filter((o) => o.roles.includes(role));
}

/** The option `key` of `role`, or undefined. */
export function optionOf(role: Role, key: string): OptionSpec | undefined {
  return OPTIONS.find((o) => o.key === key && o.roles.includes(role));
}

/** `[section, name]` of a key. */
export function splitKey(key: string): [string, string] {
  const dot = key.indexOf('.');
  return [key.slice(0, dot), key.slice(dot + 1)];
}

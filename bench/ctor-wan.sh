#!/usr/bin/env bash
# C tor on the same emulated WAN as bench/wan.bench.ts, for side-by-side figures.
#
#   bench/ctor-wan.sh [--delay 20] [--rate 100] [--mb 20] [--runs 3]     (from the project root, after npm run build)
#
# Runs ../shared/bench/ctor/testnet.sh (C tor: 3 authorities, 3 middles, 2 exits, 1 client; loopback),
# patched so that every relay's ORPort is advertised but served by bench/wan-forwarder.js, which adds the
# delay and the rate in both directions and passes the bytes to the relay's real ORPort (port + 100).
# Every link between tors then crosses exactly one forwarder, as every link between our nodes crosses one
# delay line. Then runs `node dist/bench/wan.bench.js --socks <C tor's SOCKS port>` against it, once with
# the consensus defaults (Vegas) and once with cc_alg=0; both with conflux off (one circuit per stream,
# as in Allium). Env: CTOR_SRC (default ../shared/bench/ctor), CTOR_DIR, CTOR_BASE_PORT, CONFIGS
# ("vegas fixed"). Leaves no process running: the forwarders are stopped by PID, the tors by `down`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${CTOR_SRC:-}
if [[ -z $SRC ]]; then for d in "$ROOT/../shared/bench/ctor" "$ROOT/../../shared/bench/ctor"; do [[ -x $d/testnet.sh ]] && SRC=$d && break; done; fi
[[ -n $SRC && -x $SRC/testnet.sh ]] || { echo "ctor-wan: no $SRC/testnet.sh (set CTOR_SRC)" >&2; exit 1; }
command -v tor >/dev/null || { echo "ctor-wan: tor is not installed (apt-get install -y tor)" >&2; exit 1; }
DELAY=20 RATE=100 BENCH_ARGS=()
while (($#)); do
  case $1 in
    --delay) DELAY=$2; BENCH_ARGS+=(--delay "$2"); shift 2 ;;
    --rate) RATE=$2; BENCH_ARGS+=(--rate "$2"); shift 2 ;;
    --mb | --runs) BENCH_ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "usage: bench/ctor-wan.sh [--delay MS] [--rate MBIT] [--mb N] [--runs N]" >&2; exit 2 ;;
  esac
done
export CTOR_DIR=${CTOR_DIR:-/tmp/ctor-wan-testnet} CTOR_BASE_PORT=${CTOR_BASE_PORT:-41300} CTOR_CONFLUX=0
BASE=$CTOR_BASE_PORT
WORK=$(mktemp -d /tmp/ctor-wan.XXXXXX)
cp -r "$SRC/." "$WORK/"
# Advertise the ORPort, but listen 100 ports up: the forwarder takes the advertised one.
# shellcheck disable=SC2016 # the $ are the script's own, to be kept literally
sed -i 's|^ORPort \$LOOP:\$((BASE_PORT + idx))$|ORPort $LOOP:$((BASE_PORT + idx)) NoListen\nORPort $LOOP:$((BASE_PORT + 100 + idx)) NoAdvertise|' "$WORK/testnet.sh"
grep -q 'NoAdvertise' "$WORK/testnet.sh" || { echo "ctor-wan: could not patch testnet.sh's ORPort line" >&2; exit 1; }
TN="$WORK/testnet.sh"
N_RELAYS=$((3 + ${CTOR_MIDDLES:-3} + ${CTOR_EXITS:-2}))
FWD_PIDS=()
cleanup() {
  "$TN" down >/dev/null 2>&1 || true
  for pid in "${FWD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for ((idx = 0; idx < N_RELAYS; idx++)); do
  node "$ROOT/dist/bench/wan-forwarder.js" --listen "127.0.0.1:$((BASE + idx))" --connect "127.0.0.1:$((BASE + 100 + idx))" \
    --link-delay "$DELAY" --link-rate "$RATE" >/dev/null 2>"$WORK/forwarder$idx.log" </dev/null &
  FWD_PIDS+=($!)
done

for cfg in ${CONFIGS:-vegas fixed}; do
  case $cfg in
    vegas) export CTOR_CONSENSUS_PARAMS= ;;
    fixed) export CTOR_CONSENSUS_PARAMS=cc_alg=0 ;;
    *) echo "ctor-wan: unknown config $cfg" >&2; exit 2 ;;
  esac
  echo "== C tor, $cfg (conflux off), ${DELAY} ms / ${RATE} Mbit/s per link" >&2
  "$TN" up >"$WORK/$cfg.testnet.log" 2>&1 || { cat "$WORK/$cfg.testnet.log" >&2; exit 1; }
  "$TN" wait --full >>"$WORK/$cfg.testnet.log" 2>&1 || { cat "$WORK/$cfg.testnet.log" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$CTOR_DIR/env.sh"
  node "$ROOT/dist/bench/wan.bench.js" --socks "$CTOR_SOCKS" --label "ctor-$cfg" "${BENCH_ARGS[@]}"
  "$TN" down >>"$WORK/$cfg.testnet.log" 2>&1 || true
done

#!/usr/bin/env bash
# compare.sh: goway beside Go, tokio, raw may and Redis, on this machine, in one run.
#
# usage: bench/compare.sh [--quick] [MODE]...  MODE: build echo http resp eff chan idle udp
#        https handshake resume idle-tls tls (= https handshake idle-tls) client proxy metrics
#        all (default: all = echo http resp eff chan idle udp tls; resume, client, proxy and
#        metrics run only when named; every mode but build builds first, udp alone only what it needs)
#        WORKERS=2 runs every server on 2 workers with the load generators sharing its CPUs.
#        COST=1 adds to the echo, http and resp tables what each operation costs the server:
#        CPU, its user-space share, and system calls (these with perf installed).
#        The io_uring echo peers (uring-plain, uring-multishot: echo, eff and idle) are off by
#        default: WITH_URING=1 adds both, or name them in SERVERS; URING_ARGS adds flags to
#        both (e.g. URING_ARGS="--setup none"; see peers/uring/src/bin/echo-plain.rs).
#
# It builds goway's example servers from this checkout and the peers under bench/, then runs
# each server pinned to SERVER_CPU (0), checks that it answers, loads it from LOAD_CPU (1),
# stops it, and prints one markdown table per scenario with ratios to a base server. Raw
# logs and summary.md go to bench/.results/<time>/. --quick (or QUICK=1) shortens every
# scenario so that a whole run is a smoke test of the harness, not a measurement.
# bench/README.md describes the scenarios and every setting.
set -uo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"

MODES=()
QUICK="${QUICK:-0}"
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    build|echo|http|resp|eff|chan|idle|udp|https|handshake|resume|idle-tls|tls|client|proxy|metrics|all) MODES+=("$arg") ;;
    *) echo "compare.sh: unknown argument '$arg' (modes: build echo http resp eff chan idle udp https handshake resume idle-tls tls client proxy metrics all; --quick)" >&2; exit 2 ;;
  esac
done
[ "${#MODES[@]}" -gt 0 ] || MODES=(all)

# ---- settings (environment) --------------------------------------------------------------
q() { if [ "$QUICK" = 1 ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }  # q FULL QUICK
DURATION="${DURATION:-$(q 5 0.5)}"          # seconds measured per load run
WARMUP="${WARMUP:-$(q 1 0.2)}"              # seconds of unmeasured load before them
REPS="${REPS:-1}"                           # runs of each server list (interleaved); median shown
WORKERS="${WORKERS:-}"                      # N: servers on N workers, sharing CPUs 0..N-1 with the load
if [ -n "$WORKERS" ]; then
  [[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: WORKERS must be a positive integer" >&2; exit 2; }
  SHARED_CPUS="0-$((WORKERS - 1))"
  SERVER_CPU="${SERVER_CPU:-$SHARED_CPUS}"
  LOAD_CPU="${LOAD_CPU:-$SHARED_CPUS}"
  WRK_THREADS="${WRK_THREADS:-$WORKERS}"
fi
SERVER_CPU="${SERVER_CPU:-0}"               # taskset -c list for the servers
LOAD_CPU="${LOAD_CPU:-1}"                   # taskset -c list for the load generators
CHAN_CPUS="${CHAN_CPUS:-0,1}"               # taskset -c list for the channel benchmarks
PORT_BASE="${PORT_BASE:-17100}"
ECHO_CONNS="${ECHO_CONNS:-50}"
ECHO_SIZE="${ECHO_SIZE:-64}"
ECHO_PIPELINES="${ECHO_PIPELINES:-1 16}"
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNS="${WRK_CONNS:-64}"
WRK_WARMUP="${WRK_WARMUP:-$(q 1 0)}"        # seconds of unmeasured wrk before the measured run
HTTP_PATHS="${HTTP_PATHS:-/plaintext}"
RESP_N="${RESP_N:-$(q 200000 20000)}"
RESP_CONNS="${RESP_CONNS:-50}"
RESP_PIPELINE="${RESP_PIPELINE:-16}"
RESP_TESTS="${RESP_TESTS:-set,get}"
EFF_RATE="${EFF_RATE:-$(q 50000 10000)}"    # offered frames/s; a list runs each rate
EFF_CONNS="${EFF_CONNS:-50}"
EFF_SIZE="${EFF_SIZE:-64}"
EFF_REPS="${EFF_REPS:-$REPS}"
EFF_THREADS="${EFF_THREADS:-1}"             # echo-load threads in eff (each busy-polls a CPU)
METRICS_LOADS="${METRICS_LOADS:-echo eff http}"  # the loads of the metrics mode
COST="${COST:-0}"                           # 1: echo/http/resp tables add the server's CPU per operation,
                                            # its user-space share and (with perf) system calls per operation
IDLE_N="${IDLE_N:-$(q 10000 500)}"          # idle connections held
IDLE_SETTLE_MS="${IDLE_SETTLE_MS:-$(q 1000 200)}"
IDLE_TLS_N="${IDLE_TLS_N:-$(q 5000 300)}"   # idle TLS connections held
# goway's echo serves up to 10,000 connections by default: lifted to the descriptor limit so
# that IDLE_N above 10,000 (19,000 here) is served, not refused.
GOWAY_ECHO_ARGS="${GOWAY_ECHO_ARGS---max-connections 0}"
HANDSHAKE_THREADS="${HANDSHAKE_THREADS:-16}" # handshake: tls-handshake's client threads (connections)
HANDSHAKE_VERIFY="${HANDSHAKE_VERIFY:-none}" # handshake: tls-handshake --verify (none: least client CPU; cached, full)
CHAN_ARGS="${CHAN_ARGS:-$(q '-reps 5' '-reps 1 -scale 0.02 -spawn 10000')}"
UDP_SOCKETS="${UDP_SOCKETS:-16}"            # client sockets of udp-load
UDP_SIZE="${UDP_SIZE:-64}"                  # bytes per datagram
UDP_IN_FLIGHT="${UDP_IN_FLIGHT:-4}"         # datagrams in flight per socket (closed loop)
UDP_LOSS_MS="${UDP_LOSS_MS:-200}"           # an echo not back after this counts as lost
CLIENT_CONNS="${CLIENT_CONNS:-64}"         # client scenario: concurrent requesters of each client
CLIENT_PATH="${CLIENT_PATH:-/plaintext}"    # client and proxy scenarios: the upstream's path
UPSTREAM_CPU="${UPSTREAM_CPU:-$LOAD_CPU}"   # proxy scenario: taskset -c list for the upstream
WITH_UREQ="${WITH_UREQ:-1}"
WITH_GOWAY="${WITH_GOWAY:-1}"
WITH_GO="${WITH_GO:-1}"
WITH_TOKIO="${WITH_TOKIO:-1}"
WITH_MAY="${WITH_MAY:-1}"
WITH_REDIS="${WITH_REDIS:-1}"
WITH_URING="${WITH_URING:-0}"               # 1: the io_uring echo peers (also when named in SERVERS)
URING_ARGS="${URING_ARGS:-}"                # extra flags of both io_uring echo peers
SERVERS="${SERVERS:-}"                      # only these servers (names as in the tables)
BASE="${BASE:-}"                            # ratio base for every table it appears in
CANDIDATE_NAME="${CANDIDATE_NAME:-candidate}"
ECHO_CANDIDATE="${ECHO_CANDIDATE:-}"
HTTP_CANDIDATE="${HTTP_CANDIDATE:-}"
HTTPS_CANDIDATE="${HTTPS_CANDIDATE:-}"        # as HTTP_CANDIDATE, serving TLS with the harness's pair
ECHO_TLS_CANDIDATE="${ECHO_TLS_CANDIDATE:-}"
RESP_CANDIDATE="${RESP_CANDIDATE:-}"
CHAN_CANDIDATE="${CHAN_CANDIDATE:-}"
SKIP_BUILD="${SKIP_BUILD:-0}"
BUILD_DIR="${BENCH_BUILD_DIR:-$BENCH_DIR/.build}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/.results/$(date +%Y%m%d-%H%M%S)}"

GO_BIN="$BUILD_DIR/bin"
RUST_TARGET="$BUILD_DIR/target"
RUST_BIN="$RUST_TARGET/release"
GOWAY_BIN="${GOWAY_BIN:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/examples}"
LOADGEN="$RUST_BIN/echo-load"
IDLE_PROBE="$RUST_BIN/idle-probe"
UDP_LOADGEN="$RUST_BIN/udp-load"
HANDSHAKE_LOADGEN="$RUST_BIN/tls-handshake"
WRK_LUA="$BENCH_DIR/lib/wrk-report.lua"
TABLE="$RESULTS_DIR/summary.md"

log() { printf '%s\n' "$*" >&2; }
die() { log "compare.sh: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---- building ------------------------------------------------------------------------------
GO_PEERS=(echo-article echo-plain http-hello resp-kv chanbench udp-echo http-client reverse-proxy)

build() {
  have cargo || die "cargo not found"
  log "== build: goway's examples (echo, http_hello, kv, chanbench, udp_echo, reverse_proxy, http_client_load)"
  (cd "$REPO_DIR" && cargo build --release --example echo --example http_hello --example kv --example chanbench \
    --example udp_echo --example reverse_proxy --example http_client_load) \
    || die "building goway's examples failed"
  if have go; then
    log "== build: Go peers -> $GO_BIN"
    mkdir -p "$GO_BIN"
    local p
    for p in "${GO_PEERS[@]}"; do
      (cd "$BENCH_DIR/peers/go" && go build -trimpath -o "$GO_BIN/go-$p" "./$p") || die "building go-$p failed"
    done
  else
    log "go not found: the Go peers are skipped (bench/setup.sh installs it)"
  fi
  log "== build: load generator and Rust peers -> $RUST_TARGET"
  cargo build --release --locked --manifest-path "$BENCH_DIR/Cargo.toml" --target-dir "$RUST_TARGET" \
    || die "building bench/'s Rust workspace failed"
}

# build_udp: only what the udp scenario runs (goway's udp_echo, Go's udp-echo, udp-load).
build_udp() {
  have cargo || die "cargo not found"
  log "== build: goway's udp_echo example"
  (cd "$REPO_DIR" && cargo build --release --example udp_echo) || die "building udp_echo failed"
  if have go; then
    log "== build: Go's udp-echo peer -> $GO_BIN"
    mkdir -p "$GO_BIN"
    (cd "$BENCH_DIR/peers/go" && go build -trimpath -o "$GO_BIN/go-udp-echo" ./udp-echo) || die "building go-udp-echo failed"
  else
    log "go not found: the Go peer is skipped (bench/setup.sh installs it)"
  fi
  log "== build: udp-load -> $RUST_TARGET"
  cargo build --release --locked --manifest-path "$BENCH_DIR/Cargo.toml" --target-dir "$RUST_TARGET" \
    -p bench-loadgen --bin udp-load || die "building udp-load failed"
}

# ---- processes -------------------------------------------------------------------------------
SERVER_PID=""
cleanup() { stop_scraper; [ -n "$SERVER_PID" ] && stop_server; stop_upstream; return 0; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

NEXT_PORT="$PORT_BASE"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alloc_port() {
  while port_open "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT="$NEXT_PORT"; NEXT_PORT=$((NEXT_PORT + 1))
}

# start_server TAG NAME TEMPLATE: runs the server pinned to SERVER_CPU in its own session
# (so that its whole process group can be stopped) on a fresh port, and waits up to 10 s
# for it to listen (with READY_LINE set, for that text in its output instead: a UDP server
# opens no TCP port). {addr} in the template becomes 127.0.0.1:PORT, {port} the port.
METRICS_PORT=""
start_server() {
  local tag="$1" name="$2" cmd="$3" env=""
  METRICS_PORT=""
  if [[ "$cmd" == *"{mport}"* ]]; then # a second port, for the server's metrics endpoint
    alloc_port; METRICS_PORT="$PORT"; cmd="${cmd//\{mport\}/$PORT}"
  fi
  # With WORKERS, Go's scheduler gets it explicitly (the others take it from their flags or
  # from the CPUs taskset gives them).
  [ -z "$WORKERS" ] || env="export GOMAXPROCS=$WORKERS; "
  alloc_port
  cmd="${cmd//\{addr\}/127.0.0.1:$PORT}"
  cmd="${cmd//\{port\}/$PORT}"
  SERVER_LOG="$RESULTS_DIR/$tag.${name//\//_}.server.log"
  printf '%s\n' "$cmd" > "$SERVER_LOG.cmd"
  # taskset, setsid (not a group leader here, so it does not fork) and exec all replace
  # themselves: $! is the server's own PID and the leader of its process group.
  taskset -c "$SERVER_CPU" setsid bash -c "ulimit -n \$(ulimit -Hn) 2>/dev/null; ${env}exec $cmd" \
    > "$SERVER_LOG" 2>&1 < /dev/null &
  SERVER_PID=$!
  local i
  for i in $(seq 200); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
      log "   $name: exited at start-up (log: $SERVER_LOG)"; return 1
    fi
    if [ -n "${READY_LINE:-}" ]; then
      grep -q "$READY_LINE" "$SERVER_LOG" 2>/dev/null && return 0
    else
      port_open "$PORT" && return 0
    fi
    sleep 0.05
  done
  log "   $name: not listening on port $PORT after 10 s (log: $SERVER_LOG)"
  stop_server; return 1
}

# stop_server: SIGTERM to the server's process group, SIGKILL 3 s later if it still runs.
stop_server() {
  local pid="$SERVER_PID" i
  [ -n "$pid" ] || return 0
  SERVER_PID=""
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# ---- health checks ---------------------------------------------------------------------------
check_echo() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'health check\n' >&3
    IFS= read -r -t 5 line <&3 && [ "$line" = "health check" ]
  ) 2>/dev/null
}
check_udp() { # one datagram, echoed (dd reads it in one read(2); bash's read takes a byte)
  (
    exec 3<>"/dev/udp/127.0.0.1/$PORT" || exit 1
    printf 'health check' >&3
    [ "$(timeout 5 dd bs=65536 count=1 <&3 2>/dev/null)" = "health check" ]
  ) 2>/dev/null
}
check_http() { # check_http PATH
  local body
  body="$(curl -s -m 5 "http://127.0.0.1:$PORT$1" 2>/dev/null)" || return 1
  case "$1" in
    /plaintext) [ "$body" = "Hello, World!" ] ;;
    /json) [ "$(tr -d ' \n' <<< "$body")" = '{"message":"Hello,World!"}' ] ;;
    *) [ -n "$body" ] ;;
  esac
}
check_resp() { # SET then GET a key, in RESP2
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf '*3\r\n$3\r\nSET\r\n$11\r\nbench:check\r\n$2\r\nok\r\n*2\r\n$3\r\nGET\r\n$11\r\nbench:check\r\n' >&3
    IFS= read -r -t 5 a <&3 && IFS= read -r -t 5 b <&3 && IFS= read -r -t 5 c <&3 &&
      [ "$a" = $'+OK\r' ] && [ "$b" = $'$2\r' ] && [ "$c" = $'ok\r' ]
  ) 2>/dev/null
}

check_https() { # check_https PATH: the body of PATH over TLS, verified against the harness's CA
  local body
  body="$(curl -s -m 5 --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$PORT$1" 2>/dev/null)" || return 1
  [ "$body" = "Hello, World!" ]
}
check_echo_tls() { # one line echoed over TLS
  "$IDLE_PROBE" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" -n 1 --settle-ms 0 \
    --tls-ca "$TLS_DIR/ca.pem" 2>/dev/null | grep -q ' echoed=1 '
}

# ---- TLS material ----------------------------------------------------------------------------
# tls_setup: a throwaway CA and a server certificate it signs (ECDSA P-256, for localhost and
# 127.0.0.1, 30 days) in $TLS_DIR, made with openssl once; every TLS server uses the pair.
TLS_DIR="$BUILD_DIR/tls"
tls_setup() {
  [ -s "$TLS_DIR/cert.pem" ] && [ -s "$TLS_DIR/key.pem" ] && [ -s "$TLS_DIR/ca.pem" ] && return 0
  have openssl || { log "tls: openssl not found (bench/setup.sh installs it)"; return 1; }
  mkdir -p "$TLS_DIR" && (
    cd "$TLS_DIR" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=goway bench CA" -keyout ca-key.pem -out ca.pem &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout key.pem -out server.csr &&
      printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
        -extfile server.ext -out cert.pem
  ) > "$TLS_DIR.log" 2>&1 || { log "tls: making the certificates failed (log: $TLS_DIR.log)"; return 1; }
}
TLS_ARGS_GO() { printf -- '-tls-cert %s -tls-key %s' "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"; }
TLS_ARGS() { printf -- '--tls-cert %s --tls-key %s' "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"; }

# ---- measuring -------------------------------------------------------------------------------
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_split() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat" 2>/dev/null || echo 0 0; }  # utime stime
now() { date +%s.%N; }
ceil() { awk "BEGIN { x = $1; i = int(x); if (i < x) i++; print i }"; }  # ceil '0.5 + 60' -> 61
calc() { awk "BEGIN { $1 }"; }  # calc 'printf "%.2f", 1/3'

# run_load TAG NAME CMD...: runs a load generator pinned to LOAD_CPU. CMD starts with
# `timeout --foreground N`: --foreground keeps the load generator in the script's process
# group, so that Ctrl-C stops it at once (and the trap then stops the server).
# Sets LOAD_OUT (its output file), LOAD_RC, SRV_CPU (server CPU time / wall time, in cores)
# and GEN_CPU (the load generator's, from bash's `time`).
run_load() {
  local tag="$1" name="$2"; shift 2
  LOAD_OUT="$RESULTS_DIR/$tag.${name//\//_}.load.log"
  local tfile="$LOAD_OUT.time" k0 k1 t0 t1 TIMEFORMAT='%U %S %R'
  ROW_EXTRA=""
  [ -z "$METRICS_PORT" ] || start_scraper "$METRICS_PORT" "$LOAD_OUT.scrapes"
  local u0 s0 u1 s1 perf_pid=""
  read -r u0 s0 <<< "$(cpu_split "$SERVER_PID")"
  if [ "$COST" = 1 ] && have perf; then # the server's system calls over the load (all threads)
    perf stat -x, -e raw_syscalls:sys_enter -p "$SERVER_PID" -o "$LOAD_OUT.syscalls" 2>/dev/null &
    perf_pid=$!
  fi
  k0="$(cpu_ticks "$SERVER_PID")"; t0="$(now)"
  { time taskset -c "$LOAD_CPU" "$@" > "$LOAD_OUT" 2>&1; } 2> "$tfile"
  LOAD_RC=$?
  t1="$(now)"; k1="$(cpu_ticks "$SERVER_PID")"
  read -r u1 s1 <<< "$(cpu_split "$SERVER_PID")"
  SRV_SYSCALLS="-"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null
    SRV_SYSCALLS="$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ { print $1 }' "$LOAD_OUT.syscalls" 2>/dev/null)"
    [ -n "$SRV_SYSCALLS" ] || SRV_SYSCALLS="-"
  fi
  SRV_CPU_S="$(calc "printf \"%.3f\", ($k1 - $k0) / $CLK_TCK")"; SRV_WALL="$(calc "printf \"%.3f\", $t1 - $t0")"
  SRV_USER="$(calc "u = $u1 - $u0; t = u + $s1 - $s0; if (t > 0) printf \"%.2f\", u / t; else print \"-\"")"
  if [ -n "$METRICS_PORT" ]; then
    stop_scraper
    ROW_EXTRA="scrapes=$(wc -l < "$LOAD_OUT.scrapes") scrapes_ok=$(awk '$1 == 200 && $2 > 0' "$LOAD_OUT.scrapes" | wc -l)"
  fi
  SRV_CPU="$(calc "w = $t1 - $t0; if (w > 0) printf \"%.2f\", ($k1 - $k0) / $CLK_TCK / w; else print \"-\"")"
  GEN_CPU="$(awk 'NF == 3 && $3 > 0 { printf "%.2f", ($1 + $2) / $3 }' "$tfile" 2>/dev/null)"
  [ -n "$GEN_CPU" ] || GEN_CPU="-"
}

# cost_kvs OPS: with COST=1, the last run_load's server CPU per operation (us_per_op), the
# share of it spent in user space (user_share) and system calls per operation (sys_per_op;
# "-" without perf), for OPS operations done over the load; nothing otherwise.
cost_kvs() {
  [ "$COST" = 1 ] || return 0
  calc "o = \"$1\"; c = \"$SRV_CPU_S\"; n = \"$SRV_SYSCALLS\"
    if (o ~ /^[0-9.]+\$/ && o > 0) { printf \" us_per_op=%.3f\", c * 1e6 / o
      if (n ~ /^[0-9]+\$/) printf \" sys_per_op=%.2f\", n / o; else printf \" sys_per_op=-\" }
    else printf \" us_per_op=- sys_per_op=-\"
    printf \" user_share=%s\", \"$SRV_USER\""
}
cost_cols=';server CPU us/op=us_per_op;x base us/op=us_per_op%base;user-space share=user_share;syscalls/op=sys_per_op'

# ---- metrics scraper ------------------------------------------------------------------------
# scrape_loop PORT OUT: GET /metrics on 127.0.0.1:PORT once a second (from the first scrape),
# appending one line per scrape to OUT: the status code, the number of sample lines (those
# starting with a metric name, not '#') and the body's bytes. Bash built-ins only: a scrape forks nothing, so
# the scraper costs the load generator's CPU next to nothing.
scrape_loop() {
  local port="$1" out="$2" next now wait_s status code line samples bytes
  exec 7<> <(:)   # a pipe nobody writes: `read -t` on it is a sleep without a fork
  next="${EPOCHREALTIME/./}"
  while :; do
    code=000; samples=0; bytes=0
    if exec 6<>"/dev/tcp/127.0.0.1/$port"; then
      printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&6
      if IFS= read -r -t 5 status <&6; then
        code="${status#* }"; code="${code%% *}"
        while IFS= read -r -t 5 line <&6 && [ "$line" != $'\r' ] && [ -n "$line" ]; do :; done
        while IFS= read -r -t 5 line <&6; do
          bytes=$((bytes + ${#line} + 1))
          [[ "$line" == [a-z]* ]] && samples=$((samples + 1))
        done
      fi
      exec 6<&-
    fi
    printf '%s %s %s\n' "$code" "$samples" "$bytes" >> "$out"
    next=$((next + 1000000)); now="${EPOCHREALTIME/./}"
    if [ "$next" -gt "$now" ]; then
      printf -v wait_s '%d.%06d' $(((next - now) / 1000000)) $(((next - now) % 1000000))
      read -r -t "$wait_s" -u 7
    else
      next="$now"
    fi
  done
}
SCRAPE_PID=""
start_scraper() { # PORT OUT: the scraper in the background, on LOAD_CPU
  : > "$2"
  scrape_loop "$1" "$2" 2>/dev/null &
  SCRAPE_PID=$!
  taskset -p -c "$LOAD_CPU" "$SCRAPE_PID" > /dev/null 2>&1
}
stop_scraper() {
  [ -n "$SCRAPE_PID" ] || return 0
  kill "$SCRAPE_PID" 2>/dev/null; wait "$SCRAPE_PID" 2>/dev/null
  SCRAPE_PID=""
}
check_metrics() { # the metrics endpoint, when the server has one, answers 200 with samples
  [ -n "$METRICS_PORT" ] || return 0
  local i
  for i in $(seq 100); do # it may start listening just after the server's own port
    [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null)" = 200 ] && return 0
    sleep 0.05
  done
  return 1
}

# result_kv FILE: the KEY=VALUE fields of the last RESULT line of FILE.
result_kv() { grep '^RESULT' "$1" 2>/dev/null | tail -1 | cut -d' ' -f2-; }
kv() { tr ' ' '\n' <<< "$2" | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }

# add_row SCENARIO NAME IS_BASE NOTE KVS: one run of one server, for table.awk (with the
# scrape counts of the run when the metrics endpoint was scraped: a failed scrape is a note).
ROW_EXTRA=""
add_row() {
  local note="$4"
  if [ -n "$ROW_EXTRA" ] && [ -z "$note" ] && [ "$(kv scrapes "$ROW_EXTRA")" != "$(kv scrapes_ok "$ROW_EXTRA")" ]; then
    note="scrape failed"
  fi
  printf '%s\t%s\t%s\t%s\n' "$2" "$3" "$note" "$5${ROW_EXTRA:+ $ROW_EXTRA}" >> "$RESULTS_DIR/$1.rows"
}

# ---- servers ---------------------------------------------------------------------------------
# Each list prints NAME<TAB>COMMAND<TAB>IS_BASE lines; a server is listed only if it is built
# and its group enabled, and with SERVERS set only if named there.
TAB=$'\t'
wanted() { [ -z "$SERVERS" ] || [[ " $SERVERS " == *" $1 "* ]]; }
entry() { # entry NAME BINARY ARGS IS_BASE
  wanted "$1" || return 0
  if [ -x "$2" ]; then printf '%s\t%s\t%s\n' "$1" "$2${3:+ $3}" "$4"; else log "   ($1 skipped: $2 is not built)"; fi
}
candidate() { wanted "$CANDIDATE_NAME" && [ -n "$1" ] && printf '%s\t%s\t0\n' "$CANDIDATE_NAME" "$1"; return 0; }

tokio_workers() { [ -z "$WORKERS" ] || printf ' --workers %s' "$WORKERS"; }
# uring NAME: an io_uring peer is listed with WITH_URING=1, or when SERVERS names it.
uring() { [ "$WITH_URING" = 1 ] || { [ -n "$SERVERS" ] && wanted "$1"; }; }

echo_servers() {
  [ "$WITH_GO" = 1 ] && entry go-article "$GO_BIN/go-echo-article" "-addr {addr}" 1
  [ "$WITH_GO" = 1 ] && entry go-plain "$GO_BIN/go-echo-plain" "-addr {addr}" 0
  [ "$WITH_TOKIO" = 1 ] && entry tokio-plain "$RUST_BIN/tokio-echo-plain" "--addr {addr}$(tokio_workers)" 0
  [ "$WITH_MAY" = 1 ] && entry may-plain "$RUST_BIN/may-echo-plain" "-addr {addr}" 0
  uring uring-plain && entry uring-plain "$RUST_BIN/uring-echo-plain" "--addr {addr}${URING_ARGS:+ $URING_ARGS}" 0
  uring uring-multishot && entry uring-multishot "$RUST_BIN/uring-echo-plain" "--addr {addr} --multishot${URING_ARGS:+ $URING_ARGS}" 0
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/echo" "--addr {addr}${GOWAY_ECHO_ARGS:+ $GOWAY_ECHO_ARGS}" 0
  candidate "$ECHO_CANDIDATE"
}
http_servers() {
  [ "$WITH_GO" = 1 ] && entry go-net/http "$GO_BIN/go-http-hello" "-addr {addr}" 1
  [ "$WITH_TOKIO" = 1 ] && entry tokio-hyper "$RUST_BIN/tokio-http-hello" "--addr {addr}$(tokio_workers)" 0
  [ "$WITH_MAY" = 1 ] && entry may-minihttp "$RUST_BIN/may-minihttp-hello" "-addr {addr}" 0
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/http_hello" "--addr {addr}" 0
  candidate "$HTTP_CANDIDATE"
}
resp_servers() {
  [ "$WITH_GO" = 1 ] && entry go-resp-kv "$GO_BIN/go-resp-kv" "-addr {addr}" 1
  [ "$WITH_MAY" = 1 ] && entry may-resp-kv "$RUST_BIN/may-resp-kv" "-addr {addr}" 0
  if [ "$WITH_REDIS" = 1 ] && wanted redis-server; then
    if have redis-server; then
      printf 'redis-server\t%s\t0\n' "$(command -v redis-server) --bind 127.0.0.1 --port {port} --save '' --appendonly no --protected-mode no"
    else
      log "   (redis-server skipped: not installed)"
    fi
  fi
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/kv" "--addr {addr}" 0
  candidate "$RESP_CANDIDATE"
}

https_servers() {
  [ "$WITH_GO" = 1 ] && entry go-net/http "$GO_BIN/go-http-hello" "-addr {addr} $(TLS_ARGS_GO)" 1
  [ "$WITH_TOKIO" = 1 ] && entry tokio-hyper-rustls "$RUST_BIN/tokio-https-hello" "--addr {addr} $(TLS_ARGS)$(tokio_workers)" 0
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/http_hello" "--addr {addr} $(TLS_ARGS)" 0
  candidate "$HTTPS_CANDIDATE"
}
echo_tls_servers() {
  [ "$WITH_GO" = 1 ] && entry go-plain "$GO_BIN/go-echo-plain" "-addr {addr} $(TLS_ARGS_GO)" 1
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/echo" "--addr {addr} $(TLS_ARGS)" 0
  candidate "$ECHO_TLS_CANDIDATE"
}
udp_servers() {
  [ "$WITH_GO" = 1 ] && entry go-udp "$GO_BIN/go-udp-echo" "-addr {addr}" 1
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/udp_echo" "--addr {addr}" 0
}

# for_each_server LIST_FUNCTION TAG CHECK RUN_FUNCTION: runs every listed server once:
# start, health check (CHECK), RUN_FUNCTION NAME IS_BASE (which loads it and records the
# row), stop. A server that does not start or fails its check gets a row with that note.
for_each_server() {
  local list="$1" tag="$2" check="$3" run="$4" name cmd isbase
  while IFS="$TAB" read -r -u 9 name cmd isbase; do
    if ! start_server "$tag" "$name" "$cmd"; then
      FAILED_ROW=("$name" "$isbase" "start failed"); "$run" failed; continue
    fi
    if ! $check; then
      log "   $name: health check failed (log: $SERVER_LOG)"
      stop_server; FAILED_ROW=("$name" "$isbase" "health check failed"); "$run" failed; continue
    fi
    "$run" "$name" "$isbase"
    stop_server
  done 9< <("$list")
}

# ---- scenarios -------------------------------------------------------------------------------
SCEN=""    # the scenario being run: its rows file and table
TAG=""     # the name its logs start with: the scenario, and the run's number when there are several
run_tag() { TAG="$1"; [ "$3" -le 1 ] || TAG="$1.run$2"; }
HOW=""     # the load, for the table's caption
closed_cols='server=@server;throughput=thr;p50 us=p50_us;p99 us=p99_us;p99.9 us=p999_us;errors=errors;server CPU=srv_cpu;loadgen CPU=gen_cpu;x base thr=thr%base;x base p99=p99_us%base;thr per server core=per_core;x base per core=per_core%base;thr min-max=@range'
[ "$COST" = 1 ] && closed_cols="${closed_cols%%;thr min-max=*}$cost_cols;thr min-max=@range"
per_core() { calc "a = \"$1\"; c = \"$2\"; if (a ~ /^[0-9.]+\$/ && c ~ /^[0-9.]+\$/ && c > 0) printf \"%.0f\", a / c; else print \"-\""; }

record_failed() { add_row "$SCEN" "${FAILED_ROW[0]}" "${FAILED_ROW[1]}" "${FAILED_ROW[2]}" ""; }

load_echo() { # NAME IS_BASE
  [ "$1" = failed ] && { record_failed; return; }
  run_load "$TAG" "$1" timeout --foreground "$(ceil "$DURATION + $WARMUP + 60")" "$LOADGEN" --addr "127.0.0.1:$PORT" \
    -c "$ECHO_CONNS" -s "$ECHO_SIZE" -p "$P" -d "$DURATION" -w "$WARMUP"
  local r note="" thr; r="$(result_kv "$LOAD_OUT")"
  thr="$(kv frames_per_s "$r")"
  [ -n "$thr" ] || note="load failed, rc $LOAD_RC"
  [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
  log "   $1: ${thr:--} frames/s, p99 $(kv p99_us "$r") us, errors $(kv errors "$r"), server CPU $SRV_CPU, loadgen CPU $GEN_CPU"
  add_row "$SCEN" "$1" "$2" "$note" "thr=${thr:--} $r srv_cpu=$SRV_CPU gen_cpu=$GEN_CPU per_core=$(per_core "$thr" "$SRV_CPU")$(cost_kvs "$(calc "printf \"%.0f\", ${thr:-0} * $SRV_WALL")")"
}

scenario_echo() {
  [ -x "$LOADGEN" ] || { log "echo: $LOADGEN is not built: skipped"; return; }
  local rep
  for P in $ECHO_PIPELINES; do
    SCEN="echo-p$P"; HOW="echo c=$ECHO_CONNS s=$ECHO_SIZE p=$P: \`echo-load -c $ECHO_CONNS -s $ECHO_SIZE -p $P -d $DURATION -w $WARMUP\` (closed loop), frames/s"
    for rep in $(seq "$REPS"); do
      log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"
      for_each_server echo_servers "$TAG" check_echo load_echo
    done
    print_table "$SCEN" thr "$HOW" "go-article" "$closed_cols"
  done
}

load_eff() {
  [ "$1" = failed ] && { record_failed; return; }
  run_load "$TAG" "$1" timeout --foreground "$(ceil "$DURATION + $WARMUP + 60")" "$LOADGEN" --addr "127.0.0.1:$PORT" \
    -c "$EFF_CONNS" -s "$EFF_SIZE" -d "$DURATION" -w "$WARMUP" --rate "$R" --server-pid "$SERVER_PID" -t "$EFF_THREADS"
  local r note="" ach off bl; r="$(result_kv "$LOAD_OUT")"
  ach="$(kv frames_per_s "$r")"; off="$(kv rate "$r")"; bl="$(kv backlog "$r")"
  if [ -z "$ach" ] || [ -z "$(kv server_us_per_frame "$r")" ]; then
    note="load failed, rc $LOAD_RC"
  elif calc "exit !($ach < 0.97 * $off || $bl > $off / 100)"; then
    note="overloaded"   # achieved < 97 % of offered, or more than 10 ms of frames behind
  fi
  [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
  log "   $1: offered ${off:--}, achieved ${ach:--} frames/s, backlog ${bl:--}, server $(kv server_cores "$r") cores = $(kv server_us_per_frame "$r") us/frame, errors $(kv errors "$r")"
  add_row "$SCEN" "$1" "$2" "$note" "$r$(cost_kvs "$(calc "printf \"%.0f\", ${ach:-0} * $SRV_WALL")")"
}

scenario_eff() {
  [ -x "$LOADGEN" ] || { log "eff: $LOADGEN is not built: skipped"; return; }
  local rep
  for R in $EFF_RATE; do
    SCEN="eff-r$R"; HOW="eff: server CPU per echoed frame at $R frames/s offered, c=$EFF_CONNS s=$EFF_SIZE: \`echo-load -c $EFF_CONNS -s $EFF_SIZE -d $DURATION -w $WARMUP --rate $R --server-pid PID -t $EFF_THREADS\` (open loop)"
    for rep in $(seq "$EFF_REPS"); do
      log "== $SCEN (run $rep of $EFF_REPS)"; run_tag "$SCEN" "$rep" "$EFF_REPS"
      for_each_server echo_servers "$TAG" check_echo load_eff
    done
    print_table "$SCEN" server_us_per_frame "$HOW" "go-article" \
      "server=@server;offered=rate;achieved frames/s=frames_per_s;backlog=backlog;server CPU (cores)=server_cores;server CPU us/frame=server_us_per_frame;x base us/frame=server_us_per_frame%base;us/frame (/proc/PID/stat)=server_stat_us_per_frame;us/frame min-max=@range;p50 us=p50_us;p99 us=p99_us;p99.9 us=p999_us;send lag p99 us=sendlag_p99_us;errors=errors$([ "$COST" = 1 ] && echo ';user-space share=user_share;syscalls/frame=sys_per_op')"
  done
}

load_http() {
  [ "$1" = failed ] && { record_failed; return; }
  local url="${HTTP_SCHEME:-http}://127.0.0.1:$PORT$HTTP_PATH"
  if [ "$WRK_WARMUP" -gt 0 ] 2>/dev/null; then
    taskset -c "$LOAD_CPU" timeout --foreground "$((WRK_WARMUP + 30))" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_WARMUP}s" "${WRK_EXTRA[@]}" "$url" > /dev/null 2>&1
  fi
  run_load "$TAG" "$1" timeout --foreground "$(ceil "$DURATION + 60")" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" \
    -d"$(ceil "$DURATION")s" -s "$WRK_LUA" "${WRK_EXTRA[@]}" "$url"
  local r note="" thr; r="$(result_kv "$LOAD_OUT")"
  thr="$(kv rps "$r")"
  [ -n "$thr" ] || note="load failed, rc $LOAD_RC"
  [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
  log "   $1: ${thr:--} req/s, p99 $(kv p99_us "$r") us, errors $(kv errors "$r"), server CPU $SRV_CPU, loadgen CPU $GEN_CPU"
  add_row "$SCEN" "$1" "$2" "$note" "thr=${thr:--} $r srv_cpu=$SRV_CPU gen_cpu=$GEN_CPU per_core=$(per_core "$thr" "$SRV_CPU")$(cost_kvs "$(calc "printf \"%.0f\", ${thr:-0} * $SRV_WALL")")"
}

scenario_http() {
  have wrk || { log "http: wrk not found: skipped (bench/setup.sh installs it)"; return; }
  have curl || { log "http: curl not found: skipped (bench/setup.sh installs it)"; return; }
  local rep
  for HTTP_PATH in $HTTP_PATHS; do
    SCEN="http${HTTP_PATH//\//-}"; HOW="http GET $HTTP_PATH, keep-alive: \`wrk -t$WRK_THREADS -c$WRK_CONNS -d$(ceil "$DURATION")s\` after ${WRK_WARMUP} s of unmeasured wrk, requests/s"
    for rep in $(seq "$REPS"); do
      log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"
      for_each_server http_servers "$TAG" "check_http $HTTP_PATH" load_http
    done
    print_table "$SCEN" thr "$HOW" "go-net/http" "$closed_cols"
  done
}

WRK_EXTRA=()

# https: keep-alive requests over TLS (each wrk connection does one handshake);
# resume: `Connection: close` on every request, so each one is a new connection; wrk
# (OpenSSL) resumes the session of its previous connection, so nearly all of them are
# resumptions, not full handshakes (scenario_handshake measures those).
scenario_tls_http() { # MODE
  have wrk || { log "$1: wrk not found: skipped (bench/setup.sh installs it)"; return; }
  have curl || { log "$1: curl not found: skipped (bench/setup.sh installs it)"; return; }
  tls_setup || { log "$1: no certificates: skipped"; return; }
  local rep mode="$1" how
  HTTP_PATH=/plaintext; HTTP_SCHEME=https
  if [ "$mode" = resume ]; then
    WRK_EXTRA=(-H "Connection: close")
    how="TLS resumptions: GET /plaintext with \`Connection: close\` (a new connection per request, wrk resuming the previous session): \`wrk -t$WRK_THREADS -c$WRK_CONNS -d$(ceil "$DURATION")s -H 'Connection: close'\`, requests (= handshakes, nearly all resumed) per second"
  else
    WRK_EXTRA=()
    how="https GET /plaintext, keep-alive: \`wrk -t$WRK_THREADS -c$WRK_CONNS -d$(ceil "$DURATION")s\` over TLS after ${WRK_WARMUP} s of unmeasured wrk, requests/s"
  fi
  SCEN="$mode"
  for rep in $(seq "$REPS"); do
    log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"
    for_each_server https_servers "$TAG" "check_https /plaintext" load_http
  done
  print_table "$SCEN" thr "$how" "go-net/http" "$closed_cols"
  WRK_EXTRA=(); HTTP_SCHEME=http
}

load_handshake() { # NAME IS_BASE
  [ "$1" = failed ] && { record_failed; return; }
  run_load "$TAG" "$1" timeout --foreground "$(ceil "$DURATION + $WARMUP + 60")" "$HANDSHAKE_LOADGEN" \
    --addr "127.0.0.1:$PORT" --ca "$TLS_DIR/ca.pem" -c "$HANDSHAKE_THREADS" -d "$DURATION" -w "$WARMUP" \
    --verify "$HANDSHAKE_VERIFY" --server-pid "$SERVER_PID"
  local r note="" thr srv gen; r="$(result_kv "$LOAD_OUT")"
  thr="$(kv conns_per_s "$r")"
  # CPU over the measured seconds, as tls-handshake sampled it (the harness's own covers the
  # warm-up too): the server's from /proc/PID/stat, its own from getrusage.
  srv="$(kv server_cores "$r")"; gen="$(kv loadgen_cpu "$r")"
  [ -n "$thr" ] || note="load failed, rc $LOAD_RC"
  [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
  [ "$(kv resumed "$r")" = 0 ] || [ -n "$note" ] || note="resumed"
  [ -z "$gen" ] || ! calc "exit !($gen >= 0.95)" || [ -n "$note" ] || note="loadgen-bound"
  log "   $1: ${thr:--} handshakes/s ($(kv full "$r") full, $(kv resumed "$r") resumed), p99 $(kv p99_us "$r") us, errors $(kv errors "$r"), server CPU ${srv:-$SRV_CPU} ($(kv server_us_per_conn "$r") us/conn), loadgen CPU ${gen:-$GEN_CPU} ($(kv loadgen_us_per_conn "$r") us/conn)"
  add_row "$SCEN" "$1" "$2" "$note" "thr=${thr:--} $r srv_cpu=${srv:-$SRV_CPU} gen_cpu=${gen:-$GEN_CPU} per_core=$(per_core "$thr" "${srv:-$SRV_CPU}")"
}

# handshake: full TLS handshakes, a new connection per request, from tls-handshake (rustls
# with resumption disabled: every connection is a full handshake, counted as such).
scenario_handshake() {
  [ -x "$HANDSHAKE_LOADGEN" ] || { log "handshake: $HANDSHAKE_LOADGEN is not built: skipped"; return; }
  have curl || { log "handshake: curl not found: skipped (bench/setup.sh installs it)"; return; }
  tls_setup || { log "handshake: no certificates: skipped"; return; }
  local rep
  SCEN="handshake"; HOW="full TLS handshakes: GET /plaintext with \`Connection: close\`, a new connection and a full handshake each (no resumption offered): \`tls-handshake -c $HANDSHAKE_THREADS -d $DURATION -w $WARMUP --verify $HANDSHAKE_VERIFY --ca CA\`, connections (= full handshakes) per second; server and loadgen CPU over the measured seconds"
  for rep in $(seq "$REPS"); do
    log "== handshake (run $rep of $REPS)"; run_tag handshake "$rep" "$REPS"
    for_each_server https_servers "$TAG" "check_https /plaintext" load_handshake
  done
  print_table handshake thr "$HOW" "go-net/http" \
    "${closed_cols%%;thr min-max=*};server us/conn=server_us_per_conn;loadgen us/conn=loadgen_us_per_conn;full=full;resumed=resumed;thr min-max=@range"
}

load_resp() {
  local t
  if [ "$1" = failed ]; then
    for t in ${RESP_TESTS//,/ }; do SCEN="resp-${t,,}"; record_failed; done; return
  fi
  run_load "$TAG" "$1" timeout --foreground 600 redis-benchmark -h 127.0.0.1 -p "$PORT" -n "$RESP_N" -c "$RESP_CONNS" \
    -P "$RESP_PIPELINE" -t "$RESP_TESTS" --csv
  local errs; errs="$(grep -ci error "$LOAD_OUT")"
  for t in ${RESP_TESTS//,/ }; do
    # "TEST","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    local line note="" thr p50 p99
    line="$(grep "^\"${t^^}\"," "$LOAD_OUT" | tail -1 | tr -d '"')"
    if [ -n "$line" ]; then
      thr="$(cut -d, -f2 <<< "$line")"
      p50="$(calc "printf \"%.1f\", $(cut -d, -f5 <<< "$line") * 1000")"
      p99="$(calc "printf \"%.1f\", $(cut -d, -f7 <<< "$line") * 1000")"
    else
      thr="-"; p50="-"; p99="-"; note="no result, rc $LOAD_RC"
    fi
    [ "$errs" = 0 ] || [ -n "$note" ] || note="errors"
    log "   $1 ${t^^}: $thr req/s, p99 $p99 us, server CPU $SRV_CPU (both tests), loadgen CPU $GEN_CPU"
    # The server's CPU and system calls cover every test of the run: per operation over all of them.
    add_row "resp-${t,,}" "$1" "$2" "$note" "thr=$thr p50_us=$p50 p99_us=$p99 errors=$errs srv_cpu=$SRV_CPU gen_cpu=$GEN_CPU per_core=$(per_core "$thr" "$SRV_CPU")$(cost_kvs "$((RESP_N * $(tr ',' '\n' <<< "$RESP_TESTS" | wc -l)))")"
  done
}

scenario_resp() {
  have redis-benchmark || { log "resp: redis-benchmark not found: skipped (bench/setup.sh installs it)"; return; }
  local rep t
  for rep in $(seq "$REPS"); do
    log "== resp (run $rep of $REPS)"; run_tag resp "$rep" "$REPS"
    SCEN="resp"
    for_each_server resp_servers "$TAG" check_resp load_resp
  done
  for t in ${RESP_TESTS//,/ }; do
    print_table "resp-${t,,}" thr "resp ${t^^}: \`redis-benchmark -n $RESP_N -c $RESP_CONNS -P $RESP_PIPELINE -t $RESP_TESTS --csv\`, requests/s (server CPU covers all the tests of the run; redis-benchmark gives no p99.9)" \
      "go-resp-kv" "${closed_cols//p99.9 us=p999_us;/}"
  done
}

# The idle tables' columns; the stack ones are "-" for a server without a coroutine stack per
# connection (idle-probe finds the stack size, see its stack_size).
idle_cols='server=@server;conns=conns;echoed=echoed;RSS before MiB=rss_before_kb:mib;RSS held MiB=rss_held_kb:mib;RSS after close MiB=rss_after_close_kb:mib;bytes per idle conn=bytes_per_conn;x base bytes=bytes_per_conn%base;mappings held=maps_held;mappings per conn=maps_per_conn;threads=threads_held'
idle_cols+=';stack KiB=stack_kb;stacks held=stack_maps;pages per stack=stack_pages_mean;stacks with 1/2/3+ pages=stack_hist'
IDLE_TLS_ARGS=()
load_idle() {
  [ "$1" = failed ] && { record_failed; return; }
  local n="${IDLE_COUNT:-$IDLE_N}"
  run_load "$TAG" "$1" timeout --foreground 600 "$IDLE_PROBE" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    -n "$n" --settle-ms "$IDLE_SETTLE_MS" "${IDLE_TLS_ARGS[@]}"
  local r note=""; r="$(result_kv "$LOAD_OUT")"
  [ -n "$r" ] || note="probe failed, rc $LOAD_RC"
  [ -z "$r" ] || [ "$(kv echoed "$r")" = "$n" ] || note="not all connections echoed"
  log "   $1: $(kv bytes_per_conn "$r") bytes per idle connection ($(kv echoed "$r") of $n echoed), $(kv maps_held "$r") mappings, $(kv stack_pages_mean "$r") resident pages per stack"
  add_row "$SCEN" "$1" "$2" "$note" "$r"
}

scenario_idle() {
  [ -x "$IDLE_PROBE" ] || { log "idle: $IDLE_PROBE is not built: skipped"; return; }
  local rep
  SCEN="idle"; HOW="memory per idle connection: \`idle-probe -n $IDLE_N --settle-ms $IDLE_SETTLE_MS\` opens $IDLE_N connections, echoes one line on each and holds them"
  for rep in $(seq "$REPS"); do
    log "== idle (run $rep of $REPS)"; run_tag idle "$rep" "$REPS"
    for_each_server echo_servers "$TAG" check_echo load_idle
  done
  print_table idle bytes_per_conn "$HOW" "go-article" \
    "$idle_cols"
}

scenario_idle_tls() {
  [ -x "$IDLE_PROBE" ] || { log "idle-tls: $IDLE_PROBE is not built: skipped"; return; }
  tls_setup || { log "idle-tls: no certificates: skipped"; return; }
  local rep
  SCEN="idle-tls"; HOW="memory per idle TLS connection: \`idle-probe -n $IDLE_TLS_N --settle-ms $IDLE_SETTLE_MS --tls-ca CA\` opens $IDLE_TLS_N TLS connections (handshake done), echoes one line on each and holds them"
  IDLE_TLS_ARGS=(--tls-ca "$TLS_DIR/ca.pem"); IDLE_COUNT="$IDLE_TLS_N"
  for rep in $(seq "$REPS"); do
    log "== idle-tls (run $rep of $REPS)"; run_tag idle-tls "$rep" "$REPS"
    for_each_server echo_tls_servers "$TAG" check_echo_tls load_idle
  done
  IDLE_TLS_ARGS=(); IDLE_COUNT=""
  print_table idle-tls bytes_per_conn "$HOW" "go-plain" \
    "$idle_cols"
}

scenario_chan() {
  local go="$GO_BIN/go-chanbench" input="$RESULTS_DIR/chan.input" out
  [ -x "$go" ] || { log "chan: $go is not built: skipped"; return; }
  log "== chan (taskset -c $CHAN_CPUS, $CHAN_ARGS)"
  # shellcheck disable=SC2086 # CHAN_ARGS is a list of flags
  run_chan() { # LABEL KIND COMMAND...
    local label="$1" kind="$2"; shift 2
    out="$RESULTS_DIR/chan.$label.log"
    log "   $label"
    taskset -c "$CHAN_CPUS" timeout --foreground 900 "$@" $CHAN_ARGS > "$out" 2>&1 || log "   $label failed (log: $out)"
    { echo "PROGRAM $label $kind"; cat "$out"; } >> "$input"
  }
  : > "$input"
  run_chan go go "$go"
  if [ "$WITH_MAY" = 1 ] && [ -x "$RUST_BIN/rust-chanbench" ]; then run_chan rust rust "$RUST_BIN/rust-chanbench"; fi
  if [ "$WITH_GOWAY" = 1 ] && [ -x "$GOWAY_BIN/chanbench" ]; then run_chan goway same "$GOWAY_BIN/chanbench"; fi
  # shellcheck disable=SC2086 # the candidate is a command line
  if [ -n "$CHAN_CANDIDATE" ]; then run_chan "$CANDIDATE_NAME" same $CHAN_CANDIDATE; fi
  {
    echo "### chan: \`chanbench $CHAN_ARGS\` on CPUs $CHAN_CPUS (Go: GOMAXPROCS=2; may and goway: 2 workers)"
    echo
    grep -h '^#' "$RESULTS_DIR"/chan.*.log | sed 's/^/    /'
    echo
    awk -f "$BENCH_DIR/lib/chan.awk" "$input"
    echo
  } | tee -a "$TABLE"
}

load_udp() { # NAME IS_BASE
  [ "$1" = failed ] && { record_failed; return; }
  run_load "$TAG" "$1" timeout --foreground "$(ceil "$DURATION + $WARMUP + 60")" "$UDP_LOADGEN" --addr "127.0.0.1:$PORT" \
    -c "$UDP_SOCKETS" -s "$UDP_SIZE" -p "$UDP_IN_FLIGHT" -d "$DURATION" -w "$WARMUP" --loss-ms "$UDP_LOSS_MS"
  local r note="" thr; r="$(result_kv "$LOAD_OUT")"
  thr="$(kv dgrams_per_s "$r")"
  [ -n "$thr" ] || note="load failed, rc $LOAD_RC"
  [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
  log "   $1: ${thr:--} datagrams/s, p99 $(kv p99_us "$r") us, lost $(kv lost "$r") ($(kv loss_pct "$r") %), errors $(kv errors "$r"), server CPU $SRV_CPU, loadgen CPU $GEN_CPU"
  add_row "$SCEN" "$1" "$2" "$note" "thr=${thr:--} $r srv_cpu=$SRV_CPU gen_cpu=$GEN_CPU per_core=$(per_core "$thr" "$SRV_CPU")$(cost_kvs "$(calc "printf \"%.0f\", ${thr:-0} * $SRV_WALL")")"
}

scenario_udp() {
  [ -x "$UDP_LOADGEN" ] || { log "udp: $UDP_LOADGEN is not built: skipped"; return; }
  local rep cols='server=@server;datagrams/s=thr;p50 us=p50_us;p99 us=p99_us;lost=lost;loss %=loss_pct;errors=errors;server CPU=srv_cpu;loadgen CPU=gen_cpu;x base thr=thr%base;x base p99=p99_us%base;thr per server core=per_core;x base per core=per_core%base;thr min-max=@range'
  SCEN="udp"; HOW="UDP echo, $UDP_SOCKETS sockets x $UDP_IN_FLIGHT in flight, $UDP_SIZE-byte datagrams: \`udp-load -c $UDP_SOCKETS -s $UDP_SIZE -p $UDP_IN_FLIGHT -d $DURATION -w $WARMUP\` (closed loop, lost after $UDP_LOSS_MS ms), datagrams/s"
  READY_LINE="listening on"
  for rep in $(seq "$REPS"); do
    log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"
    for_each_server udp_servers "$TAG" check_udp load_udp
  done
  READY_LINE=""
  print_table "$SCEN" thr "$HOW" "go-udp" "$cols"
}

# ---- client and proxy: one upstream, several clients or proxies ----------------------------
# The upstream is Go's http-hello (goway's http_hello without Go): the same server for every
# client, and behind every proxy.
upstream_cmd() {
  if [ -x "$GO_BIN/go-http-hello" ]; then printf '%s' "$GO_BIN/go-http-hello -addr {addr}"
  elif [ -x "$GOWAY_BIN/http_hello" ]; then printf '%s' "$GOWAY_BIN/http_hello --addr {addr}"
  fi
}

# start_upstream: the upstream pinned to UPSTREAM_CPU on a fresh port (UPSTREAM_PORT), for
# the proxy scenario (its proxies are the servers started and stopped in turn).
UPSTREAM_PID=""
start_upstream() {
  local cmd; cmd="$(upstream_cmd)"
  [ -n "$cmd" ] || { log "   no upstream built (go-http-hello or http_hello)"; return 1; }
  alloc_port; UPSTREAM_PORT="$PORT"
  cmd="${cmd//\{addr\}/127.0.0.1:$PORT}"
  taskset -c "$UPSTREAM_CPU" setsid bash -c "ulimit -n \$(ulimit -Hn) 2>/dev/null; exec $cmd" \
    > "$RESULTS_DIR/proxy.upstream.log" 2>&1 < /dev/null &
  UPSTREAM_PID=$!
  local i
  for i in $(seq 200); do
    port_open "$UPSTREAM_PORT" && return 0
    kill -0 "$UPSTREAM_PID" 2>/dev/null || break
    sleep 0.05
  done
  log "   upstream did not start (log: $RESULTS_DIR/proxy.upstream.log)"; stop_upstream; return 1
}
stop_upstream() {
  local pid="$UPSTREAM_PID" i
  [ -n "$pid" ] || return 0
  UPSTREAM_PID=""
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# Clients: NAME<TAB>COMMAND<TAB>IS_BASE, {url} {d} {w} filled in by load_client.
client_list() {
  local a="{url} -c $CLIENT_CONNS -d {d} -warmup {w}"
  [ "$WITH_GO" = 1 ] && entry go-http.Client "$GO_BIN/go-http-client" "-url $a" 1
  [ "$WITH_UREQ" = 1 ] && entry ureq "$RUST_BIN/ureq-client" "-url $a" 0
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/http_client_load" "--url {url} --conns $CLIENT_CONNS --duration {d} --warmup {w}" 0
}
client_cols='client=@server;throughput=thr;errors=errors;upstream CPU=srv_cpu;client CPU=gen_cpu;x base thr=thr%base;thr min-max=@range'

scenario_client() {
  SCEN=client; HOW="http client GET $CLIENT_PATH, keep-alive, $CLIENT_CONNS concurrent requesters, ${DURATION} s after ${WARMUP} s of warm-up, requests/s (the upstream on CPU $SERVER_CPU, each client on CPU $LOAD_CPU)"
  local rep name cmd isbase url cmd_up
  cmd_up="$(upstream_cmd)"
  [ -n "$cmd_up" ] || { log "client: no upstream built: skipped"; return; }
  for rep in $(seq "$REPS"); do
    log "== client (run $rep of $REPS)"; run_tag client "$rep" "$REPS"
    start_server "$TAG" upstream "$cmd_up" || { log "client: upstream did not start: skipped"; return; }
    check_http "$CLIENT_PATH" || { log "client: upstream health check failed: skipped"; stop_server; return; }
    url="http://127.0.0.1:$PORT$CLIENT_PATH"
    while IFS="$TAB" read -r -u 9 name cmd isbase; do
      cmd="${cmd//\{url\}/$url}"; cmd="${cmd//\{d\}/$DURATION}"; cmd="${cmd//\{w\}/$WARMUP}"
      # shellcheck disable=SC2086 # the command line is split into its words on purpose
      run_load "$TAG" "$name" timeout --foreground "$(ceil "$DURATION + $WARMUP + 60")" $cmd
      local r note="" thr; r="$(result_kv "$LOAD_OUT")"
      thr="$(kv rps "$r")"
      [ -n "$thr" ] || note="load failed, rc $LOAD_RC"
      [ "$(kv errors "$r")" = 0 ] || [ -n "$note" ] || note="errors"
      log "   $name: ${thr:--} req/s, errors $(kv errors "$r"), upstream CPU $SRV_CPU, client CPU $GEN_CPU"
      add_row client "$name" "$isbase" "$note" "thr=${thr:--} $r srv_cpu=$SRV_CPU gen_cpu=$GEN_CPU"
    done 9< <(client_list)
    stop_server
  done
  print_table client thr "$HOW" "go-http.Client" "$client_cols"
}

proxy_servers() {
  local up="http://127.0.0.1:$UPSTREAM_PORT"
  [ "$WITH_GO" = 1 ] && entry go-ReverseProxy "$GO_BIN/go-reverse-proxy" "-addr {addr} -upstream $up" 1
  [ "$WITH_GOWAY" = 1 ] && entry goway "$GOWAY_BIN/reverse_proxy" "--addr {addr} --upstream $up" 0
}

scenario_proxy() {
  have wrk || { log "proxy: wrk not found: skipped (bench/setup.sh installs it)"; return; }
  have curl || { log "proxy: curl not found: skipped (bench/setup.sh installs it)"; return; }
  local rep
  HTTP_PATH="$CLIENT_PATH"
  SCEN=proxy; HOW="reverse proxy, GET $CLIENT_PATH through it to one upstream (CPU $UPSTREAM_CPU), keep-alive both sides: \`wrk -t$WRK_THREADS -c$WRK_CONNS -d$(ceil "$DURATION")s\` after ${WRK_WARMUP} s of unmeasured wrk, requests/s"
  start_upstream || { log "proxy: skipped"; return; }
  for rep in $(seq "$REPS"); do
    log "== proxy (run $rep of $REPS)"; run_tag proxy "$rep" "$REPS"
    for_each_server proxy_servers "$TAG" "check_http $CLIENT_PATH" load_http
  done
  stop_upstream
  print_table proxy thr "$HOW" "go-ReverseProxy" "$closed_cols"
}

# ---- metrics: goway without and with its metrics endpoint, scraped during the load -------
# The same example three times per run: `goway` (no --metrics), `goway+metrics` (--metrics on
# a second port, GET /metrics once a second while the load runs) and `goway+endpoint`
# (--metrics on a port of its own choosing, never scraped: the endpoint's presence without
# its scrapes). Their order rotates from one run to the next so that none always goes first.
METRICS_REP=1
metrics_pair() { # BINARY: the entries, in this run's order
  local e=() i k
  e+=("$(entry goway "$1" "--addr {addr}" 1)")
  e+=("$(entry goway+metrics "$1" "--addr {addr} --metrics 127.0.0.1:{mport}" 0)")
  e+=("$(entry goway+endpoint "$1" "--addr {addr} --metrics 127.0.0.1:0" 0)")
  for i in 0 1 2; do
    k=$(((i + METRICS_REP - 1) % 3))
    [ -z "${e[k]}" ] || printf '%s\n' "${e[k]}"
  done
}
metrics_echo_servers() { metrics_pair "$GOWAY_BIN/echo"; }
metrics_http_servers() { metrics_pair "$GOWAY_BIN/http_hello"; }
check_echo_metrics() { check_echo && check_metrics; }
check_http_metrics() { check_http "$HTTP_PATH" && check_metrics; }

scenario_metrics() {
  local rep scr=';scrapes=scrapes;scrapes ok=scrapes_ok'
  local how_m="goway without and with \`--metrics\` (goway+metrics: GET /metrics once a second during the load; goway+endpoint: not scraped; x base = on/off)"
  if [ -x "$LOADGEN" ] && [[ " $METRICS_LOADS " == *" echo "* ]]; then
    for P in $ECHO_PIPELINES; do
      SCEN="metrics-echo-p$P"; HOW="$how_m: echo c=$ECHO_CONNS s=$ECHO_SIZE p=$P: \`echo-load -c $ECHO_CONNS -s $ECHO_SIZE -p $P -d $DURATION -w $WARMUP\` (closed loop), frames/s"
      for rep in $(seq "$REPS"); do
        log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"; METRICS_REP="$rep"
        for_each_server metrics_echo_servers "$TAG" check_echo_metrics load_echo
      done
      print_table "$SCEN" thr "$HOW" goway "$closed_cols$scr"
    done
  fi
  if [ -x "$LOADGEN" ] && [[ " $METRICS_LOADS " == *" eff "* ]]; then
    for R in $EFF_RATE; do
      SCEN="metrics-eff-r$R"; HOW="$how_m: eff, server CPU per echoed frame at $R frames/s offered, c=$EFF_CONNS s=$EFF_SIZE: \`echo-load -c $EFF_CONNS -s $EFF_SIZE -d $DURATION -w $WARMUP --rate $R --server-pid PID -t $EFF_THREADS\` (open loop)"
      for rep in $(seq "$EFF_REPS"); do
        log "== $SCEN (run $rep of $EFF_REPS)"; run_tag "$SCEN" "$rep" "$EFF_REPS"; METRICS_REP="$rep"
        for_each_server metrics_echo_servers "$TAG" check_echo_metrics load_eff
      done
      print_table "$SCEN" server_us_per_frame "$HOW" goway \
        "server=@server;offered=rate;achieved frames/s=frames_per_s;backlog=backlog;server CPU (cores)=server_cores;server CPU us/frame=server_us_per_frame;x base us/frame=server_us_per_frame%base;us/frame min-max=@range;p50 us=p50_us;p99 us=p99_us;p99.9 us=p999_us;errors=errors$scr"
    done
  fi
  [ -x "$LOADGEN" ] || log "metrics: $LOADGEN is not built: echo and eff skipped"
  if have wrk && have curl && [[ " $METRICS_LOADS " == *" http "* ]]; then
    for HTTP_PATH in $HTTP_PATHS; do
      SCEN="metrics-http${HTTP_PATH//\//-}"; HOW="$how_m: http GET $HTTP_PATH, keep-alive: \`wrk -t$WRK_THREADS -c$WRK_CONNS -d$(ceil "$DURATION")s\` after ${WRK_WARMUP} s of unmeasured wrk, requests/s"
      for rep in $(seq "$REPS"); do
        log "== $SCEN (run $rep of $REPS)"; run_tag "$SCEN" "$rep" "$REPS"; METRICS_REP="$rep"
        for_each_server metrics_http_servers "$TAG" check_http_metrics load_http
      done
      print_table "$SCEN" thr "$HOW" goway "$closed_cols$scr"
    done
  elif [[ " $METRICS_LOADS " == *" http "* ]]; then
    log "metrics: wrk or curl not found: http skipped (bench/setup.sh installs them)"
  fi
}

# print_table SCENARIO METRIC CAPTION DEFAULT_BASE COLUMNS
print_table() {
  local rows="$RESULTS_DIR/$1.rows"
  [ -s "$rows" ] || return 0
  {
    echo "### $3"
    echo
    awk -v metric="$2" -v base="${BASE:-$4}" -v cols="$5" -f "$BENCH_DIR/lib/table.awk" "$rows"
    echo
  } | tee -a "$TABLE"
}

# ---- main ------------------------------------------------------------------------------------
have taskset || die "taskset not found (bench/setup.sh installs it)"
if [ "$SKIP_BUILD" != 1 ]; then
  if [ "${MODES[*]}" = udp ]; then build_udp; else build; fi
fi
[ "${MODES[*]}" = build ] && exit 0

mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
{
  echo "## compare.sh $(printf '%s ' "${MODES[@]}")$([ "$QUICK" = 1 ] && echo '(--quick: a smoke test, not a measurement)')"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- commit: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_DIR" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(uname -sr), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- tools: $(have go && go version | awk '{ print $3 }'), $(rustc --version 2>/dev/null | awk '{ print $1, $2 }'), $(have wrk && wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), redis-benchmark $(have redis-benchmark && redis-benchmark --version | awk '{ print $2 }')"
  echo "- servers on CPU $SERVER_CPU, load generators on CPU $LOAD_CPU; ${DURATION} s measured after ${WARMUP} s of warm-up; $REPS run(s) of each server"
  [ -z "$WORKERS" ] || echo "- WORKERS=$WORKERS: every server on $WORKERS workers (Go: GOMAXPROCS=$WORKERS; tokio: --workers $WORKERS; may and goway: one per CPU of $SERVER_CPU), the load generators on the same CPUs (wrk -t$WRK_THREADS, eff's echo-load -t$EFF_THREADS)"
  [ -n "$ECHO_CANDIDATE$HTTP_CANDIDATE$RESP_CANDIDATE$CHAN_CANDIDATE" ] &&
    echo "- candidate '$CANDIDATE_NAME': echo='$ECHO_CANDIDATE' http='$HTTP_CANDIDATE' resp='$RESP_CANDIDATE' chan='$CHAN_CANDIDATE'"
  echo "- raw logs: $RESULTS_DIR"
  echo
} | tee "$TABLE"

for m in "${MODES[@]}"; do
  case "$m" in
    all) scenario_echo; scenario_http; scenario_resp; scenario_eff; scenario_chan; scenario_idle; scenario_udp
         scenario_tls_http https; scenario_handshake; scenario_idle_tls ;;
    echo) scenario_echo ;;
    http) scenario_http ;;
    resp) scenario_resp ;;
    eff) scenario_eff ;;
    chan) scenario_chan ;;
    idle) scenario_idle ;;
    https) scenario_tls_http https ;;
    handshake) scenario_handshake ;;
    resume) scenario_tls_http resume ;;
    idle-tls) scenario_idle_tls ;;
    tls) scenario_tls_http https; scenario_handshake; scenario_idle_tls ;;
    udp) scenario_udp ;;
    client) scenario_client ;;
    proxy) scenario_proxy ;;
    metrics) scenario_metrics ;;
  esac
done
log "summary: $TABLE"

#!/usr/bin/env bash
# Side-by-side load comparison on this machine, in one run: wrk → simulator directly, wrk → nginx proxy_pass → simulator, and
# wrk → gateway (auth on) → simulator, for JSON and SSE, interleaved over several rounds. Reports medians of req/s, p50/p99
# latency and the proxy process's CPU µs per request (utime+stime from /proc). Loopback only; bounded in time.
#
#   bench/load/compare.sh [--rounds N] [--duration S] [--connections C] [--workers W] [--upstream sim|static] [--out FILE]
#                         [--metrics-off-too] [--sockets-too] [--baseline BINARY] [--port-base P]
# Like for like: nginx runs W worker processes and the gateway W socket event-loop threads (server.io_threads; default 1, the
# nginx config most guides start from on a small box), and both write one log line per request to a file, buffered (nginx's
# access_log with buffer=64k flush=1s, the gateway's request log thread).
# --metrics-off-too adds a second gateway with [metrics] enabled = false, to show what recording metrics costs.
# --sockets-too adds a gateway with [proxy] upstream_client = "sockets" (target gateway-sockets; the default is "http1"), interleaved.
# --baseline BINARY adds another gateway build (e.g. an older commit's out/gateway) with the same configuration (target
# gateway-baseline), interleaved: an A/B of two builds in the same minutes.
# --upstream static: instead of the simulator, a second nginx (1 worker) answers every request with a fixed body captured from the
# simulator (the JSON answer; for SSE the stream with usage in every chunk, as the gateway asks vLLM for it), in one write with
# Content-Length. Its cost per request is the same whoever calls it, so the proxies are compared without the simulator's own
# CPU, which grows behind a slower proxy. ARCHITECTURE.md's performance budget is stated for a static upstream.
# --port-base P (default 18000): the simulator listens on P, the gateways on P+80, P+82, P+83, the nginx proxy on P+81 (JSON) and
# P+84 (SSE), the baseline gateway on P+85, a static upstream on P+90 (JSON) and P+91 (SSE).
set -euo pipefail
CALLER_DIR=$PWD # relative --out and --baseline paths are the caller's
cd "$(dirname "$0")/../.."

ROUNDS=3 DURATION=10 CONNECTIONS=32 WORKERS=1 OUT="" TARGETS="direct nginx gateway" PORT_BASE=18000 UPSTREAM=sim BASELINE=""
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --upstream) UPSTREAM=$2; shift 2 ;;
    --out) OUT=$2; [[ $OUT == /* ]] || OUT=$CALLER_DIR/$OUT; shift 2 ;;
    --metrics-off-too) TARGETS+=" gateway-nometrics"; shift ;;
    --sockets-too) TARGETS+=" gateway-sockets"; shift ;;
    --baseline) BASELINE=$2; [[ $BASELINE == /* ]] || BASELINE=$CALLER_DIR/$BASELINE; TARGETS+=" gateway-baseline"; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || { echo "--workers takes a positive number" >&2; exit 2; }
[[ $UPSTREAM == sim || $UPSTREAM == static ]] || { echo "--upstream takes sim or static" >&2; exit 2; }
[[ -z $BASELINE || -x $BASELINE ]] || { echo "--baseline: $BASELINE is not an executable" >&2; exit 2; }

command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "installing wrk and nginx" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
}
[[ -x out/gateway ]] || ./build.sh publish >&2

SIM_PORT=$PORT_BASE NGINX_PORT=$((PORT_BASE + 81)) NGINX_SSE_PORT=$((PORT_BASE + 84)) GW_PORT=$((PORT_BASE + 80)) GW2_PORT=$((PORT_BASE + 82)) GW3_PORT=$((PORT_BASE + 83))
GW4_PORT=$((PORT_BASE + 85)) STATIC_JSON_PORT=$((PORT_BASE + 90)) STATIC_SSE_PORT=$((PORT_BASE + 91))
KEY="ml-$(printf 'b%.0s' {1..64})"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$WORK/nginx.pid" "$WORK/static/nginx.pid"; do [[ -f $f ]] && { kill "$(cat "$f")" 2>/dev/null || true; }; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_http() { for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# Upstream: the built-in simulator with zero delays, 16 tokens per answer (a static, fast upstream).
out/gateway simulate --host 127.0.0.1 --port $SIM_PORT --tokens 16 >"$WORK/sim.log" 2>&1 & SIM_PID=$!; PIDS+=($SIM_PID)
wait_http "http://127.0.0.1:$SIM_PORT/health"
kill -0 "$SIM_PID" 2>/dev/null || { echo "the simulator did not start (is port $SIM_PORT taken?)" >&2; exit 1; }

# Where JSON and SSE requests go: the simulator for both, or the static upstream's two ports.
JSON_UP=$SIM_PORT SSE_UP=$SIM_PORT
if [[ $UPSTREAM == static ]]; then
  ask() { curl -sf "http://127.0.0.1:$SIM_PORT/v1/chat/completions" -H 'Content-Type: application/json' -d "$1"; }
  MESSAGES='"messages":[{"role":"user","content":"Hello! How are you today?"}],"max_tokens":16'
  JSON_BODY=$(ask "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",$MESSAGES}") || { echo "could not capture the JSON body" >&2; exit 1; }
  SSE_BODY=$(ask "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",$MESSAGES,\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}"; echo x)
  SSE_BODY=${SSE_BODY%x} # keep the stream's final blank line
  # The gateway's health checks ask which models a backend serves.
  MODELS_BODY=$(curl -sf "http://127.0.0.1:$SIM_PORT/v1/models") || { echo "could not capture /v1/models" >&2; exit 1; }
  [[ $JSON_BODY == *'"usage"'* && $MODELS_BODY == *Qwen* && $SSE_BODY == *"[DONE]"* ]] || { echo "could not capture the static bodies" >&2; exit 1; }
  mkdir -p "$WORK/static"
  printf '%s' "$JSON_BODY" >"$WORK/static/json"; printf '%s' "$SSE_BODY" >"$WORK/static/sse"; printf '%s' "$MODELS_BODY" >"$WORK/static/models"
  chmod a+rx "$WORK" "$WORK/static"; chmod a+r "$WORK/static/json" "$WORK/static/sse" "$WORK/static/models" # nginx's workers run as an unprivileged user
  # nginx's static files answer POST with 405; error_page turns that into the file (an internal redirect, the same for both proxies).
  cat >"$WORK/static/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/static/nginx.pid;
error_log $WORK/static/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  etag off;
  open_file_cache max=16; # no open/close per request
  keepalive_requests 1000000000; # the default (1000) would make both proxies reconnect every 1000 requests
  server {
    listen 127.0.0.1:$STATIC_JSON_PORT; root $WORK/static;
    location / { default_type application/json; try_files /json =404; error_page 405 =200 \$uri; }
    location = /v1/models { default_type application/json; try_files /models =404; }
  }
  server {
    listen 127.0.0.1:$STATIC_SSE_PORT; root $WORK/static;
    location / { default_type text/event-stream; try_files /sse =404; error_page 405 =200 \$uri; }
    location = /v1/models { default_type application/json; try_files /models =404; }
  }
}
NGINX
  nginx -c "$WORK/static/nginx.conf" -p "$WORK/static"
  wait_http "http://127.0.0.1:$STATIC_JSON_PORT/health"
  JSON_UP=$STATIC_JSON_PORT SSE_UP=$STATIC_SSE_PORT
  kill "$SIM_PID"; PIDS=(); SIM_PID="" # not needed any more: keep the cores for the proxies
fi

cat >"$WORK/base.toml" <<TOML
[server]
host = "127.0.0.1"
port = $GW_PORT
io_threads = $WORKERS
[logging]
level = "info"               # everything on: one JSON log line per request (to a file), metrics, limits, auth
[storage]
data_dir = "$WORK/data"      # one per gateway: the embedded store locks its directory
[[models]]
name = "qwen"
model_id = "Qwen/Qwen2.5-7B-Instruct"
  [[models.backends]]
  url = "http://127.0.0.1:$JSON_UP"
[[models]]
name = "qwen-stream"         # the same model, on the static upstream's SSE port when there is one
model_id = "Qwen/Qwen2.5-7B-Instruct"
  [[models.backends]]
  url = "http://127.0.0.1:$SSE_UP"
[[keys]]
name = "bench"
key = "$KEY"
# Limits on (checked and charged on every request) but high enough never to refuse.
rpm_limit = 1000000000
tpm_limit = 1000000000000
TOML
# start_gateway NAME PORT EXTRA_TOML [BINARY]: a gateway on base.toml with its own port, data dir and extra settings; prints its PID.
start_gateway() {
  local name=$1 port=$2 extra=$3 binary=${4:-out/gateway} pid
  sed -e "s/^port = $GW_PORT/port = $port/" -e "s#^data_dir = \"$WORK/data\"#data_dir = \"$WORK/data-$name\"#" "$WORK/base.toml" >"$WORK/$name.toml"
  printf '%b' "$extra" >>"$WORK/$name.toml"
  "$binary" serve "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 & pid=$!
  if ! (wait_http "http://127.0.0.1:$port/health") || ! kill -0 "$pid" 2>/dev/null; then
    echo "the $name gateway did not start (is port $port taken?):" >&2; cat "$WORK/$name.log" >&2; kill "$pid" 2>/dev/null; exit 1
  fi
  echo "$pid"
}
GW_PID=$(start_gateway gateway "$GW_PORT" "") || exit 1; PIDS+=($GW_PID)
GW2_PID=""
if [[ $TARGETS == *nometrics* ]]; then
  GW2_PID=$(start_gateway gateway-nometrics "$GW2_PORT" '[metrics]\nenabled = false\n') || exit 1; PIDS+=($GW2_PID)
fi
GW3_PID=""
if [[ $TARGETS == *sockets* ]]; then
  # The same gateway with requests to the simulator carried by SocketsHttpHandler instead of the gateway's own HTTP/1.1 client.
  GW3_PID=$(start_gateway gateway-sockets "$GW3_PORT" '[proxy]\nupstream_client = "sockets"\n') || exit 1; PIDS+=($GW3_PID)
fi
GW4_PID=""
if [[ -n $BASELINE ]]; then
  GW4_PID=$(start_gateway gateway-baseline "$GW4_PORT" "" "$BASELINE") || exit 1; PIDS+=($GW4_PID)
fi

cat >"$WORK/nginx.conf" <<NGINX
worker_processes $WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx-access.log combined buffer=64k flush=1s;
  # Neither the gateway nor Kestrel caps requests per connection; nginx's default of 1000 (clients and upstream keepalive alike)
  # would make it reconnect to wrk and to the upstream every 1000 requests.
  keepalive_requests 1000000000;
  upstream json_up { server 127.0.0.1:$JSON_UP; keepalive 128; keepalive_requests 1000000000; }
  upstream sse_up { server 127.0.0.1:$SSE_UP; keepalive 128; keepalive_requests 1000000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://json_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
  server {
    listen 127.0.0.1:$NGINX_SSE_PORT;
    location / {
      proxy_pass http://sse_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"
wait_http "http://127.0.0.1:$NGINX_PORT/health"; wait_http "http://127.0.0.1:$NGINX_SSE_PORT/health"
for _ in $(seq 1 50); do # all workers forked, or their CPU and RSS would be undercounted
  NGINX_WORKERS=$(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')
  (( $(wc -w <<<"$NGINX_WORKERS") >= WORKERS )) && break; sleep 0.1
done
# The upstream's CPU per request is reported too: behind a slower proxy the simulator spends more per request (fewer requests per
# wake-up), which the shared cores take from everyone.
UPSTREAM_PIDS=$SIM_PID
if [[ $UPSTREAM == static ]]; then
  for _ in $(seq 1 50); do UPSTREAM_PIDS=$(pgrep -P "$(cat "$WORK/static/nginx.pid")" | tr '\n' ' '); [[ -n $UPSTREAM_PIDS ]] && break; sleep 0.1; done
fi

lua() { # $1 = model, $2 = stream(true|false), $3 = auth header or empty
  cat <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
$( [[ -n $3 ]] && echo "wrk.headers[\"Authorization\"] = \"Bearer $3\"" )
wrk.body = '{"model":"$1","messages":[{"role":"user","content":"Hello! How are you today?"}],"max_tokens":16,"stream":$2}'
LUA
}
lua "Qwen/Qwen2.5-7B-Instruct" false "" >"$WORK/direct-json.lua"
lua "Qwen/Qwen2.5-7B-Instruct" true "" >"$WORK/direct-sse.lua"
lua "qwen" false "$KEY" >"$WORK/gw-json.lua"
lua "qwen-stream" true "$KEY" >"$WORK/gw-sse.lua"

cpu_ticks() { [[ -z $1 ]] && { echo 0; return; }; local p t=0; for p in $1; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
TCK=$(getconf CLK_TCK)

# One wrk run: prints "reqs_per_s p50_ms p99_ms proxy_cpu_us_per_req non2xx upstream_cpu_us_per_req"
run() { # $1 target port, $2 lua, $3 pids to charge CPU to (space-separated, or empty)
  local before after up_before up_after out
  before=$(cpu_ticks "$3"); up_before=$(cpu_ticks "$UPSTREAM_PIDS")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$2" "http://127.0.0.1:$1/v1/chat/completions" 2>&1)
  after=$(cpu_ticks "$3"); up_after=$(cpu_ticks "$UPSTREAM_PIDS")
  echo "$out" >>"$WORK/wrk.log"
  awk -v ticks=$((after - before)) -v up=$((up_after - up_before)) -v tck="$TCK" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    /^ +50%/ { p50=ms($2) } /^ +99%/ { p99=ms($2) }
    /requests in/ { total=$1 }
    /Non-2xx/ { bad=$NF }
    END { cpu = (total > 0 && ticks > 0) ? ticks * 1e6 / tck / total : 0; upcpu = total > 0 ? up * 1e6 / tck / total : 0
          printf "%s %.3f %.3f %.1f %d %.1f\n", rps, p50, p99, cpu, bad+0, upcpu }' <<<"$out"
}

declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
  for kind in json sse; do
    for target in $TARGETS; do
      case $target in
        direct) r=$(run "$( [[ $kind == json ]] && echo $JSON_UP || echo $SSE_UP )" "$WORK/direct-$kind.lua" "") ;;
        nginx) r=$(run "$( [[ $kind == json ]] && echo $NGINX_PORT || echo $NGINX_SSE_PORT )" "$WORK/direct-$kind.lua" "$NGINX_WORKERS") ;;
        gateway) r=$(run $GW_PORT "$WORK/gw-$kind.lua" "$GW_PID") ;;
        gateway-nometrics) r=$(run $GW2_PORT "$WORK/gw-$kind.lua" "$GW2_PID") ;;
        gateway-sockets) r=$(run $GW3_PORT "$WORK/gw-$kind.lua" "$GW3_PID") ;;
        gateway-baseline) r=$(run $GW4_PORT "$WORK/gw-$kind.lua" "$GW4_PID") ;;
      esac
      RESULTS[$kind,$target]+="$r"$'\n'
      echo "round $round $kind $target: $r" >&2
    done
  done
done

median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
col() { awk -v c="$1" 'NF { print $c }' <<<"$2" | median; }
# The median of the round-by-round ratios of column $1 (target over nginx, in the same round): rounds are interleaved, so each
# pair ran under the same load from the machine's other tenants; a ratio of medians can pair a fast round with a slow one.
paired() { paste -d' ' <(awk -v c="$1" 'NF { print $c }' <<<"$2") <(awk -v c="$1" 'NF { print $c }' <<<"$3") |
  awk '$2 > 0 { print $1 / $2 }' | median | awk '{ printf "%.2f×", $1 }'; }
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status")
NGINX_RSS_KB=0; for p in $NGINX_WORKERS; do NGINX_RSS_KB=$((NGINX_RSS_KB + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
RSS_MORE=""
[[ -n $GW3_PID ]] && RSS_MORE="; gateway-sockets: $(( $(awk '/VmRSS/ {print $2}' "/proc/$GW3_PID/status") / 1024 )) MB"
[[ -n $GW4_PID ]] && RSS_MORE+="; gateway-baseline: $(( $(awk '/VmRSS/ {print $2}' "/proc/$GW4_PID/status") / 1024 )) MB"

{
  echo "| path | kind | req/s | p50 ms | p99 ms | proxy CPU µs/req | non-2xx | req/s vs nginx | CPU vs nginx | paired req/s vs nginx | paired CPU vs nginx | upstream CPU µs/req |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for kind in json sse; do
    n_rps=$(col 1 "${RESULTS[$kind,nginx]}"); n_cpu=$(col 4 "${RESULTS[$kind,nginx]}")
    for target in $TARGETS; do
      d=${RESULTS[$kind,$target]}
      rps=$(col 1 "$d"); p50=$(col 2 "$d"); p99=$(col 3 "$d"); cpu=$(col 4 "$d"); bad=$(col 5 "$d"); upcpu=$(col 6 "$d")
      ratio=$(awk -v a="$rps" -v b="$n_rps" 'BEGIN { printf "%.2f×", a/b }')
      cratio=$( [[ $target == direct ]] && echo "—" || awk -v a="$cpu" -v b="$n_cpu" 'BEGIN { if (b > 0) printf "%.2f×", a/b; else print "—" }')
      pratio=$(paired 1 "$d" "${RESULTS[$kind,nginx]}"); pcratio=$( [[ $target == direct ]] && echo "—" || paired 4 "$d" "${RESULTS[$kind,nginx]}")
      [[ $target == direct ]] && cpu="—"
      echo "| $target | $kind | $rps | $p50 | $p99 | $cpu | $bad | $ratio | $cratio | $pratio | $pcratio | $upcpu |"
    done
  done
  echo
  echo "Paired columns: the median of each round's ratio to nginx in the same round. Medians of $ROUNDS interleaved rounds, wrk -t2 -c$CONNECTIONS -d${DURATION}s, $(nproc) cores, nginx worker_processes $WORKERS and gateway io_threads $WORKERS, request logs on both, upstream: $( [[ $UPSTREAM == static ]] && echo "static (a second nginx serving bodies captured from the simulator)" || echo "the simulator (16 tokens, no delays)" ). Gateway RSS after the run: $((RSS_KB / 1024)) MB$RSS_MORE; nginx workers: $((NGINX_RSS_KB / 1024)) MB."
} | tee ${OUT:+"$OUT"}

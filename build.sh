#!/usr/bin/env bash
# build.sh — build, run, test and benchmark the gateway. See docs/BUILD.md, or ./build.sh help.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

export DOTNET_NOLOGO=1
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# No MSBuild worker nodes left behind after the script ends (CI, shared machines).
export MSBUILDDISABLENODEREUSE=1

OUT_DIR="$ROOT/out"
BINARY="$OUT_DIR/gateway"
WORK_DIR="$ROOT/.build"          # logs and generated files (git-ignored)
DEMO_KEY="ml-0000000000000000000000000000000000000000000000000000000000000001"
DEMO_MODEL="qwen"
# `run` only: gateway.toml ships with the admin API off (admin_key = ""); the demo turns it on with this key (ADMIN_API_KEY wins).
DEMO_ADMIN_KEY="demo-admin-key"
# The simulator serves gateway.toml's model and the seed README's quick-start model, so its admin API walkthrough works as written.
DEMO_SIM_MODELS="Qwen/Qwen2.5-7B-Instruct,meta-llama/Llama-3.1-70B-Instruct"

say() { printf '==> %s\n' "$*"; }
warn() { printf 'build.sh: %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }

usage() {
  cat <<'EOF'
Usage: ./build.sh <command> [args]

  publish          dotnet publish -c Release -o out → out/gateway (Native AOT). Fails on any IL/AOT/trim warning.
  run              publish if out/gateway is stale, start the simulator (SIM_PORT, default 8000) and the gateway
                   (GATEWAY_PORT, default 8080) with gateway.toml and the admin API on (ADMIN_API_KEY, default
                   demo-admin-key), print ready-to-paste curl commands; Ctrl+C stops both.
  test             install PostgreSQL/Redis/Node.js if missing, build once, run every test project in parallel,
                   end with "N passed, N failed[, N skipped]"; non-zero exit on any failure, skip or crashed project.
  bench [filter]   BenchmarkDotNet: dotnet run -c Release --project bench/Gateway.Benchmarks -- --filter '<filter|*>'
  bench-load ...   publish bench/Gateway.Load → out/gateway-load (Native AOT, when stale) and run it with the args, e.g.
                   --profile sweep --upstream simulator --duration 5; report in --out (default .build/load); --help for all
  help             this text

Environment: GATEWAY_PORT, SIM_PORT, ADMIN_API_KEY (run); TEST_HANG_TIMEOUT (test, default 20m: a hung test project is killed and fails).
EOF
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but was not found on PATH${2:+ ($2)}"; }

# ---------------------------------------------------------------------------------------------------------------------------------
# publish

cmd_publish() {
  need dotnet "install the .NET 10 SDK"
  mkdir -p "$WORK_DIR"
  local log="$WORK_DIR/publish.log" rc=0
  say "dotnet publish src/Gateway/Gateway.csproj -c Release -o out  (log: ${log#"$ROOT"/})"
  dotnet publish src/Gateway/Gateway.csproj -c Release -o "$OUT_DIR" 2>&1 | tee "$log" || rc=$?

  # IL2xxx = trimming, IL3xxx = AOT/single-file; ILC also words them as "AOT analysis warning" / "Trim analysis warning".
  local pattern='(warning|error) IL[0-9]{4}|warning IL|(AOT|Trim) analysis (warning|error)'
  local findings
  findings="$(grep -E "$pattern" "$log" | sed -E 's/^[[:space:]]+//' | sort -u || true)"
  if [[ -n "$findings" ]]; then
    warn "the publish reported trimming/AOT analysis diagnostics; the native binary is not trusted:"
    printf '%s\n' "$findings" >&2
    # Remove the binary (so `run` does not use it) and ILC's intermediates (so the next publish runs ILC again and shows the
    # warnings again instead of an incremental no-op that would look clean).
    rm -f "$BINARY" "$BINARY.dbg"
    rm -rf src/Gateway/obj/Release/net10.0/*/native
    exit 1
  fi
  if (( rc != 0 )); then
    die "dotnet publish failed (exit $rc); see ${log#"$ROOT"/}"
  fi
  [[ -x "$BINARY" ]] || die "dotnet publish succeeded but $BINARY is missing"

  local bytes
  bytes="$(stat -c %s "$BINARY")"
  say "$(printf 'out/gateway: %s bytes (%.1f MiB)' "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')")"
}

# ---------------------------------------------------------------------------------------------------------------------------------
# run

binary_is_stale() {
  [[ -x "$BINARY" ]] || return 0
  local newer
  newer="$(find src gateway.toml Directory.Build.props Directory.Packages.props \
             \( -path '*/bin' -o -path '*/obj' \) -prune -o -type f -newer "$BINARY" -print 2>/dev/null | head -n 1)"
  [[ -n "$newer" ]]
}

port_in_use() {
  local port="$1"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
  if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]; then return 0; fi
  return 1
}

check_port() {
  local name="$1" port="$2"
  [[ "$port" =~ ^[0-9]+$ ]] && (( port > 0 && port < 65536 )) || die "$name='$port' is not a port number"
  if port_in_use "$port"; then
    die "port $port ($name) is already in use — stop whatever listens there or choose another one, e.g. $name=$((port + 1)) ./build.sh run"
  fi
}

# wait_http URL PID NAME [timeout seconds]
wait_http() {
  local url="$1" pid="$2" name="$3" timeout="${4:-60}" waited=0
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "$name exited before $url answered"
    (( waited >= timeout * 5 )) && die "$name did not answer $url within ${timeout}s"
    sleep 0.2
    waited=$((waited + 1))
  done
}

RUN_PIDS=()
stop_children() {
  trap - EXIT INT TERM
  local pid i
  for pid in "${RUN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # The gateway drains in-flight streams on SIGTERM; give both a moment, then make sure.
  for i in $(seq 1 50); do
    local alive=0
    for pid in "${RUN_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.2
  done
  for pid in "${RUN_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

cmd_run() {
  need curl
  local gw_port="${GATEWAY_PORT:-8080}" sim_port="${SIM_PORT:-8000}"
  check_port SIM_PORT "$sim_port"
  check_port GATEWAY_PORT "$gw_port"
  [[ "$gw_port" != "$sim_port" ]] || die "GATEWAY_PORT and SIM_PORT must differ (both are $gw_port)"

  if binary_is_stale; then
    say "out/gateway is missing or older than src/ or gateway.toml: publishing"
    cmd_publish
  else
    say "out/gateway is up to date"
  fi

  local config="gateway.toml"
  if [[ "$sim_port" != "8000" ]]; then
    # gateway.toml points its backend at the simulator on :8000; use a copy that points at SIM_PORT. It stays in the repo
    # root's .build/ so relative paths (data_dir) mean the same thing.
    mkdir -p "$WORK_DIR"
    config="$WORK_DIR/gateway.run.toml"
    sed -E "s#(http://(127\.0\.0\.1|localhost)):8000#\1:${sim_port}#g" gateway.toml > "$config"
    say "using ${config#"$ROOT"/} (backend url → http://127.0.0.1:${sim_port})"
  fi

  trap stop_children EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  say "starting the simulator: out/gateway simulate --port $sim_port --model $DEMO_SIM_MODELS"
  "$BINARY" simulate --port "$sim_port" --model "$DEMO_SIM_MODELS" &
  local sim_pid=$!
  RUN_PIDS+=("$sim_pid")
  wait_http "http://127.0.0.1:${sim_port}/health" "$sim_pid" "the simulator"

  local admin_key="${ADMIN_API_KEY:-$DEMO_ADMIN_KEY}"
  say "starting the gateway: PORT=$gw_port ADMIN_API_KEY=… out/gateway serve ${config#"$ROOT"/}"
  PORT="$gw_port" ADMIN_API_KEY="$admin_key" "$BINARY" serve "$config" &
  local gw_pid=$!
  RUN_PIDS+=("$gw_pid")
  wait_http "http://127.0.0.1:${gw_port}/health" "$gw_pid" "the gateway"

  cat <<EOF

Gateway ready on http://localhost:${gw_port} (simulator on http://127.0.0.1:${sim_port}). Ctrl+C stops both.

# non-streaming
curl -sS http://localhost:${gw_port}/v1/chat/completions \\
  -H "Authorization: Bearer ${DEMO_KEY}" \\
  -H "Content-Type: application/json" \\
  -d '{"model":"${DEMO_MODEL}","messages":[{"role":"user","content":"Hello!"}]}'

# streaming
curl -sSN http://localhost:${gw_port}/v1/chat/completions \\
  -H "Authorization: Bearer ${DEMO_KEY}" \\
  -H "Content-Type: application/json" \\
  -d '{"model":"${DEMO_MODEL}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

OpenAI SDK: base_url=http://localhost:${gw_port}/v1 api_key=${DEMO_KEY}

# admin API (X-Admin-Key: ${admin_key}; README.md "Admin API" has the whole walkthrough)
curl -sS http://localhost:${gw_port}/admin/v1/models -H "X-Admin-Key: ${admin_key}"
curl -sS http://localhost:${gw_port}/admin/v1/keys -H "X-Admin-Key: ${admin_key}" \\
  -H "Content-Type: application/json" -d '{"name":"dev-key"}'

EOF

  local rc=0 which=""
  wait -n "$sim_pid" "$gw_pid" || rc=$?
  kill -0 "$gw_pid" 2>/dev/null && which="the simulator" || which="the gateway"
  warn "$which exited (status $rc); stopping"
  exit "$(( rc == 0 ? 1 : rc ))"
}

# ---------------------------------------------------------------------------------------------------------------------------------
# test

install_prerequisites() {
  local pkgs=()
  if ! command -v redis-server >/dev/null 2>&1 && [[ ! -x /usr/bin/redis-server ]]; then pkgs+=(redis-server); fi
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then pkgs+=(postgresql); fi
  if ! command -v node >/dev/null 2>&1; then pkgs+=(nodejs npm)
  elif ! command -v npm >/dev/null 2>&1; then pkgs+=(npm); fi
  (( ${#pkgs[@]} )) || return 0

  local sudo=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null 2>&1 || die "missing ${pkgs[*]} and not root (no sudo either): install them first"
    sudo=(sudo -n)
  fi
  need apt-get "install ${pkgs[*]} by hand"
  say "installing ${pkgs[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
}

test_projects() {
  # Every project under tests/ that declares itself a test project (the shared fixtures library does not).
  grep -l -E '<IsTestProject>[[:space:]]*true[[:space:]]*</IsTestProject>' tests/*/*.csproj | sort
}

# parse_summary LOG → "passed failed skipped found": found=1 a summary was printed, 2 "No test is available" (zero tests, fine),
# 3 "Test Run Aborted." (test host crashed or was killed as hung; the counts are the tests that finished), 0 nothing usable.
parse_summary() {
  awk '
    # minimal/quiet verbosity: "Passed!  - Failed:     0, Passed:    42, Skipped:     0, Total:    42, Duration: …"
    /(Passed|Failed)! +- +Failed: *[0-9]+, +Passed: *[0-9]+, +Skipped: *[0-9]+, +Total: *[0-9]+/ {
      line = $0
      sub(/.*! +- +/, "", line)
      n = split(line, parts, ",")
      for (i = 1; i <= n; i++) {
        split(parts[i], kv, ":"); key = kv[1]; gsub(/ /, "", key); val = kv[2] + 0
        if (key == "Failed") sf += val; else if (key == "Passed") sp += val; else if (key == "Skipped") ss += val
      }
      short = 1; next
    }
    # normal/detailed verbosity: "Test Run Successful." / "Test Run Failed." then "Total tests: N", "Passed: N", "Failed: N", "Skipped: N"
    /^Test Run (Successful|Failed)\./ { inblock = 1; long = 1; next }
    /^Test Run Aborted\./ { inblock = 1; aborted = 1; next }
    inblock && /^ *Total tests: *[0-9]+/ { next }
    inblock && /^ +Passed: *[0-9]+ *$/  { lp += $2; next }
    inblock && /^ +Failed: *[0-9]+ *$/  { lf += $2; next }
    inblock && /^ +Skipped: *[0-9]+ *$/ { ls += $2; next }
    inblock && /Total time:/ { inblock = 0; next }
    /No test is available in / { none = 1 }
    END {
      if (aborted)    print lp + 0, lf + 0, ls + 0, 3
      else if (short) print sp + 0, sf + 0, ss + 0, 1
      else if (long)  print lp + 0, lf + 0, ls + 0, 1
      else if (none) print 0, 0, 0, 2
      else           print 0, 0, 0, 0
    }
  ' "$1"
}

cmd_test() {
  need dotnet "install the .NET 10 SDK"
  install_prerequisites

  say "dotnet build Gateway.slnx -c Release"
  dotnet build Gateway.slnx -c Release

  local projects=()
  mapfile -t projects < <(test_projects)
  (( ${#projects[@]} )) || die "no test projects found under tests/"

  local logdir="$WORK_DIR/test-logs"
  rm -rf "$logdir" "$WORK_DIR/test-results"
  mkdir -p "$logdir"

  local -A pid_of=() log_of=() rc_of=()
  local proj name
  for proj in "${projects[@]}"; do
    name="$(basename "$proj" .csproj)"
    log_of[$name]="$logdir/$name.log"
    say "dotnet test $proj  (log: ${log_of[$name]#"$ROOT"/})"
    dotnet test "$proj" -c Release --no-build --logger "console;verbosity=normal" \
      --results-directory "$WORK_DIR/test-results/$name" \
      --blame-hang-timeout "${TEST_HANG_TIMEOUT:-20m}" --blame-hang-dump-type none \
      >"${log_of[$name]}" 2>&1 </dev/null &
    pid_of[$name]=$!
  done

  # Print each log as its project finishes (bash ≥ 5.1: wait -n -p; older bash: in order).
  local -A name_of=()
  local remaining=() done_pid rc pid
  for name in "${!pid_of[@]}"; do name_of[${pid_of[$name]}]="$name"; remaining+=("${pid_of[$name]}"); done
  while (( ${#remaining[@]} > 0 )); do
    rc=0
    if (( BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1) )); then
      done_pid=""
      wait -n -p done_pid "${remaining[@]}" || rc=$?
      [[ -n "$done_pid" ]] || die "lost track of the test processes (wait -n: $rc)"
    else
      done_pid="${remaining[0]}"
      wait "$done_pid" || rc=$?
    fi
    local next=()
    for pid in "${remaining[@]}"; do
      if [[ "$pid" != "$done_pid" ]]; then next+=("$pid"); fi
    done
    remaining=("${next[@]}")
    name="${name_of[$done_pid]}"
    rc_of[$name]=$rc
    printf '\n===== %s (exit %s) =====\n' "$name" "$rc"
    cat "${log_of[$name]}"
  done

  local passed=0 failed=0 skipped=0 bad=0 p f s found
  local problems=()
  echo
  for proj in "${projects[@]}"; do
    name="$(basename "$proj" .csproj)"
    read -r p f s found < <(parse_summary "${log_of[$name]}")
    rc="${rc_of[$name]:-255}"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    case "$found" in
      1) printf '  %-32s %d passed, %d failed, %d skipped\n' "$name" "$p" "$f" "$s" ;;
      2) printf '  %-32s no tests\n' "$name" ;;
      3) printf '  %-32s ABORTED after %d passed, %d failed, %d skipped (exit %s)\n' "$name" "$p" "$f" "$s" "$rc" ;;
      *) printf '  %-32s NO SUMMARY (exit %s)\n' "$name" "$rc" ;;
    esac
    if (( found == 3 )); then
      failed=$((failed + 1)); bad=1
      problems+=("$name: the test run was aborted (test host crashed or hung) — counted as 1 failure; see ${log_of[$name]#"$ROOT"/}")
    elif (( found == 0 )); then
      failed=$((failed + 1)); bad=1
      problems+=("$name printed no test summary (exit $rc): crashed, hung or did not build — counted as 1 failure; see ${log_of[$name]#"$ROOT"/}")
    elif (( rc != 0 )) && (( f == 0 )); then
      failed=$((failed + 1)); bad=1
      problems+=("$name exited with $rc although no test failed — counted as 1 failure; see ${log_of[$name]#"$ROOT"/}")
    fi
    if (( f > 0 )); then problems+=("$name: $f failed test(s)"); fi
    if (( s > 0 )); then problems+=("$name: $s skipped test(s) — a skipped test counts as a failure here (e.g. a missing server)"); fi
  done
  local problem
  for problem in ${problems[@]+"${problems[@]}"}; do warn "$problem"; done

  local summary="$passed passed, $failed failed"
  if (( skipped > 0 )); then summary+=", $skipped skipped"; fi
  echo "$summary"
  if (( bad || failed > 0 || skipped > 0 )); then exit 1; fi
}

# ---------------------------------------------------------------------------------------------------------------------------------
# bench

cmd_bench() {
  need dotnet "install the .NET 10 SDK"
  local filter="${1:-*}"
  if (( $# )); then shift; fi
  dotnet run -c Release --project bench/Gateway.Benchmarks -- --filter "$filter" "$@"
}

# ---------------------------------------------------------------------------------------------------------------------------------
# bench-load

cmd_bench_load() {
  need dotnet "install the .NET 10 SDK"
  local tool="$OUT_DIR/gateway-load" log="$WORK_DIR/publish-load.log" rc=0
  mkdir -p "$WORK_DIR"
  if [[ ! -x "$tool" || -n "$(find bench/Gateway.Load Directory.Build.props Directory.Packages.props \( -path '*/bin' -o -path '*/obj' \) -prune \
         -o -type f -newer "$tool" -print 2>/dev/null | head -n 1)" ]]; then
    say "dotnet publish bench/Gateway.Load -c Release -o out  (log: ${log#"$ROOT"/})"
    dotnet publish bench/Gateway.Load/Gateway.Load.csproj -c Release -o "$OUT_DIR" >"$log" 2>&1 || rc=$?
    if grep -qE '(warning|error) IL[0-9]{4}|(AOT|Trim) analysis (warning|error)' "$log"; then
      grep -E '(warning|error) IL[0-9]{4}|(AOT|Trim) analysis (warning|error)' "$log" | sort -u >&2
      rm -f "$tool" "$tool.dbg"
      die "the gateway-load publish reported trimming/AOT diagnostics"
    fi
    (( rc == 0 )) || { cat "$log" >&2; die "dotnet publish of bench/Gateway.Load failed (exit $rc)"; }
  fi
  # The simulator upstream is `out/gateway simulate`: make sure it is there and current.
  if [[ " $* " == *" simulator "* ]] && binary_is_stale; then
    say "out/gateway is missing or stale: publishing"
    cmd_publish
  fi
  local args=("$@")
  [[ " $* " == *" --out "* || " $* " == *" --out="* ]] || args+=(--out "$WORK_DIR/load")
  "$tool" "${args[@]}"
}

# ---------------------------------------------------------------------------------------------------------------------------------

main() {
  local cmd="${1:-help}"
  if (( $# )); then shift; fi
  case "$cmd" in
    publish) cmd_publish "$@" ;;
    run) cmd_run "$@" ;;
    test) cmd_test "$@" ;;
    bench) cmd_bench "$@" ;;
    bench-load) cmd_bench_load "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"

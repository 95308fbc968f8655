#!/bin/bash
# us2.sh PORT LUA PIDS...: user/sys µs per request (1 decimal) during a 5s wrk
PORT=$1; LUA=$2; shift 2; P="$@"
t() { local u=0 s=0; for p in $P; do read u1 s1 < <(awk '{print $14, $15}' /proc/$p/stat); u=$((u+u1)); s=$((s+s1)); done; echo $u $s; }
read u0 s0 < <(t)
out=$(wrk -t2 -c32 -d5s -s $LUA http://127.0.0.1:$PORT/v1/chat/completions)
read u1 s1 < <(t)
n=$(awk '/requests in/{print $1}' <<<"$out")
awk -v u=$((u1-u0)) -v s=$((s1-s0)) -v n=$n -v p=$PORT 'BEGIN{printf "port %s req %d user %.1f sys %.1f total %.1f us\n", p, n, u*1e4/n, s*1e4/n, (u+s)*1e4/n}'

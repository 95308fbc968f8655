#!/bin/bash
# prof.sh BIN CFG OUT: perf record the gateway under wrk (static upstream on 18090 must run)
BIN=$1; CFG=$2; OUT=$3
$BIN serve $CFG > /tmp/ngt/gwprof.log 2>&1 & GP=$!; sleep 1.2
wrk -t2 -c32 -d9s -s /tmp/ngt/json.lua http://127.0.0.1:18080/v1/chat/completions > /tmp/ngt/prof-wrk.txt &
sleep 2; perf record -e cycles:u -F 4999 -g -p $GP -o $OUT -- sleep 5 2>/dev/null >/dev/null; wait %2 2>/dev/null; sleep 2
kill $GP; wait $GP 2>/dev/null; grep -E "Requests/sec" /tmp/ngt/prof-wrk.txt

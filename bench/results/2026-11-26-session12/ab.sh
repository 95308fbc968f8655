#!/bin/bash
# ab.sh ROUNDS NAME=BIN:CFG ... : alternating us2 runs against the gateway on :18080 (static upstream on :18090), medians per NAME
# nginx=x:x measures the nginx proxy px.conf (:18081); nginx1=x:x (added in session 13) a 1-worker copy of it (worker_processes 1, :18082, px1.pid)
R=$1; shift
: > /tmp/ngt/ab.out
for r in $(seq 1 $R); do for spec in "$@"; do name=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; cfg=${rest#*:}
  if [[ $name == nginx1 ]]; then echo "$name $(bash /tmp/ngt/us2.sh 18082 /tmp/ngt/direct.lua $(pgrep -P $(cat /tmp/ngt/px1.pid)))" >> /tmp/ngt/ab.out; continue; fi
  if [[ $name == nginx* ]]; then echo "$name $(bash /tmp/ngt/us2.sh 18081 /tmp/ngt/direct.lua $(pgrep -P $(cat /tmp/ngt/px.pid)))" >> /tmp/ngt/ab.out; continue; fi
  $bin serve $cfg > /tmp/ngt/ab-$name.log 2>/tmp/ngt/ab.err & GP=$!; sleep 1.2; echo "$name $(bash /tmp/ngt/us2.sh 18080 /tmp/ngt/json.lua $GP)" >> /tmp/ngt/ab.out; kill $GP; wait $GP 2>/dev/null; sleep 0.3; done; done
python3 - <<'P'
import collections,statistics
d=collections.defaultdict(list)
for l in open('/tmp/ngt/ab.out'):
    f=l.split(); d[f[0]].append((float(f[4]),float(f[6]),float(f[8]),float(f[10])))
for k,v in d.items():
    print(k, 'n',len(v),'req/5s %.0f'%statistics.median(x[0] for x in v),'user %.1f'%statistics.median(x[1] for x in v),'sys %.1f'%statistics.median(x[2] for x in v),'total %.1f'%statistics.median(x[3] for x in v), ' totals', [x[3] for x in v])
P

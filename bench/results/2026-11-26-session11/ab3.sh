#!/bin/bash
# ab3.sh ROUNDS CFG BIN... : alternating us2 runs (1 loop static JSON), medians per binary
R=$1; CFG=$2; shift 2
for r in $(seq 1 $R); do for b in "$@"; do $b serve $CFG > /tmp/ngt/x.log 2>&1 & GP=$!; sleep 1.2; echo "$(basename $b) $(bash /tmp/ngt/us2.sh 18080 /tmp/ngt/json.lua $GP)"; kill $GP; wait $GP 2>/dev/null; sleep 0.3; done; done > /tmp/ngt/ab3.out
python3 - <<'P'
import collections,statistics
d=collections.defaultdict(list)
for l in open('/tmp/ngt/ab3.out'):
    f=l.split(); d[f[0]].append((float(f[4]),float(f[6]),float(f[8]),float(f[10])))
for k,v in d.items():
    print(k, 'n',len(v),'req/5s %.0f'%statistics.median(x[0] for x in v),'user %.1f'%statistics.median(x[1] for x in v),'sys %.1f'%statistics.median(x[2] for x in v),'total %.1f'%statistics.median(x[3] for x in v), ' totals', [x[3] for x in v])
P

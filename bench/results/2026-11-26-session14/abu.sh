#!/bin/bash
# abu.sh ROUNDS NAME=CMD ... (session 14): alternating 5 s wrk runs through the gateway (:18080, cmp.toml, static upstream t3.conf on
# :18090; see session 12's ab.sh) or nginx (NAME nginx*: px.conf on :18081). abu.out lines: name, requests, gateway (or nginx
# workers) CPU ns per request, the static upstream's CPU ns per request; medians printed at the end.
R=$1; shift; UP=$(pgrep -P $(cat /tmp/ngt/t3.pid)); : > /tmp/ngt/abu.out
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq 1 $R); do for spec in "$@"; do name=${spec%%=*}; cmd=${spec#*=}
  if [[ $name == nginx* ]]; then PX=$(pgrep -P $(cat /tmp/ngt/px.pid) | tr '\n' ' '); port=18081; lua=direct.lua; else
  bash -c "$cmd" > /tmp/ngt/abu-$name.log 2>&1 & sleep 1.2; PX=$(pgrep -nx gateway); port=18080; lua=json.lua; fi
  g0=0; for p in $PX; do g0=$((g0+$(cpu $p))); done; u0=$(cpu $UP)
  out=$(wrk -t2 -c32 -d5s -s /tmp/ngt/$lua http://127.0.0.1:$port/v1/chat/completions)
  g1=0; for p in $PX; do g1=$((g1+$(cpu $p))); done; u1=$(cpu $UP)
  n=$(awk '/requests in/{print $1}' <<<"$out")
  echo "$name $n $(( (g1-g0)*10000000/n )) $(( (u1-u0)*10000000/n ))" >> /tmp/ngt/abu.out
  [[ $name == nginx* ]] || { pkill -x gateway; sleep 0.5; }
done; done
python3 - <<'P'
import collections,statistics
d=collections.defaultdict(list)
for l in open('/tmp/ngt/abu.out'):
    f=l.split(); d[f[0]].append((int(f[1]),int(f[2])/1000,int(f[3])/1000))
for k,v in d.items():
    print(k,'n',len(v),'req/5s %.0f'%statistics.median(x[0] for x in v),'gw us/req %.1f'%statistics.median(x[1] for x in v),'upstream us/req %.1f'%statistics.median(x[2] for x in v), [x[0] for x in v])
P

#!/bin/bash
# run.sh VARIANT (base|new|se): fresh redis + gateway, 2 s warm-up, 5 s measured; prints req/s, CPU µs/req, ctx switches/req per thread
V=$1; B=/tmp/resp-bench
BIN=$B/gw-$V; [ $V = se -o $V = nt -o $V = emb ] && BIN=$B/gw-new
redis-server --port 6491 --bind 127.0.0.1 --save "" --appendonly no --daemonize no > $B/redis.log 2>&1 &
RP=$!
sleep 0.5
rm -rf $B/data-$V
$BIN serve $B/gw-$V.toml > $B/gw-$V.log 2>&1 &
GP=$!
sleep 1.5
wrk -t2 -c32 -d2s -s $B/json.lua http://127.0.0.1:18188/v1/chat/completions >/dev/null
snap(){ for t in /proc/$GP/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(grep -E '^(voluntary|nonvoluntary)_ctxt' $t/status | awk '{print $2}' | tr '\n' ' ') $(awk '{print $14+$15}' $t/stat)"; done; }
read u0 s0 < <(awk '{print $14, $15}' /proc/$GP/stat)
snap > $B/ctx1-$V
out=$(wrk -t2 -c32 -d5s -s $B/json.lua http://127.0.0.1:18188/v1/chat/completions)
snap > $B/ctx2-$V
read u1 s1 < <(awk '{print $14, $15}' /proc/$GP/stat)
kill $GP; wait $GP 2>/dev/null
kill $RP; wait $RP 2>/dev/null
n=$(awk '/requests in/{print $1}' <<<"$out"); rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
tck=$(getconf CLK_TCK)
echo "$V req/s $rps n $n non2xx ${non2xx:-0} cpu_us/req $(awk -v a=$((u1-u0+s1-s0)) -v n=$n -v t=$tck 'BEGIN{printf "%.1f", a*1e6/t/n}') user $(awk -v a=$((u1-u0)) -v n=$n -v t=$tck 'BEGIN{printf "%.1f", a*1e6/t/n}') sys $(awk -v a=$((s1-s0)) -v n=$n -v t=$tck 'BEGIN{printf "%.1f", a*1e6/t/n}')"
join <(sort $B/ctx1-$V) <(sort $B/ctx2-$V) | awk -v n=$n '{v=$7-$3; nv=$8-$4; cpu=$9-$5; if (v+nv > n/100 || cpu>0) printf "   %-22s vol/req %.3f invol/req %.3f cpu_ticks %d\n",$2,v/n,nv/n,cpu}' | sort -k2 | awk '{k=$1; if (k ~ /^\.NET_TP_Worker|^\.NET_Tiered|^\.NET_Long/) {sub(/_?[0-9]*$/,"",k)} print}'

#!/bin/bash
set -u
# The agent from the image (npm run image first) run as test/image/image.test.ts runs it, on a "node"
# namespace's bridge, while one pod calls another at 1000 HTTP requests/s for 30 s (keep-alive, 8 sockets):
# prints its RSS idle, at 10 s and 20 s and after, and how many flows /api/flows serves. Root. A
# measurement, not a test (wrk has no rate limit, and wrk2 is not packaged here).
cd "$(dirname "$0")/../.."
image=localhost/tapwire:$(node -p "require('./package.json').version")
N=twld; net=10.251.77
c=$(buildah from "$image"); m=$(buildah mount $c)
data=$(mktemp -d); chown 65532:65532 $data
for n in node srv cli; do ip netns add $N$n; done
ip -n ${N}node link set lo up; ip -n ${N}node link add twbr0 type bridge; ip -n ${N}node addr add $net.1/24 dev twbr0; ip -n ${N}node link set twbr0 up
i=11; for p in srv cli; do ip -n ${N}node link add v$p type veth peer name eth0 netns $N$p; ip -n ${N}node link set v$p master twbr0 up; ip -n $N$p addr add $net.$i/24 dev eth0; ip -n $N$p link set eth0 up; ip -n $N$p link set lo up; i=$((i+1)); done
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent TAPWIRE_REDACT_KEY=k ip netns exec ${N}node unshare --mount --propagation private sh -c "mount --bind $m $m && mount -o remount,bind,ro $m && mount -t proc proc $m/proc && mount -t sysfs sysfs $m/sys && mount --rbind /dev $m/dev && mount --bind $data $m/data && exec chroot $m /usr/bin/setpriv --reuid=65532 --regid=65532 --clear-groups --no-new-privs --inh-caps=-all,+net_raw,+net_admin --ambient-caps=-all,+net_raw,+net_admin --bounding-set=-all,+net_raw,+net_admin tapwire agent --interface twbr0 --listen $net.1:9464 --token t --data-dir /data --filter 'tcp port 8080'" > "$data.agent.log" 2>&1 &
apid=$!
ip netns exec ${N}srv node test/agent/pods/http-server.mjs $net.11 8080 > /dev/null 2>&1 &
spid=$!
sleep 3
echo "idle: $(grep -E 'VmRSS' /proc/$apid/status)"
ip netns exec ${N}cli node --input-type=module -e "
import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const rate = 1000, secs = 30; let done = 0, bad = 0; const t0 = Date.now();
const get = (i) => new Promise((r) => http.get({ host: '$net.11', port: 8080, path: '/items/' + i, agent }, (res) => { res.resume(); res.on('end', () => { if (res.statusCode !== 200) bad++; done++; r(); }); }).on('error', () => { bad++; r(); }));
for (let s = 0; s < secs * 10; s++) { const batch = []; for (let k = 0; k < rate / 10; k++) batch.push(get(s * 100 + k)); await Promise.all(batch); const wait = t0 + (s + 1) * 100 - Date.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait)); }
console.log('requests', done, 'bad', bad, 'rate', (done / ((Date.now() - t0) / 1000)).toFixed(0) + '/s');
" &
lpid=$!
for s in 10 20; do sleep 10; echo "at ${s}s: $(grep -E 'VmRSS|RssAnon' /proc/$apid/status | tr -s ' \t\n' ' ') cpu: $(ps -o %cpu= -p $apid)"; done
wait $lpid
echo "after: $(grep -E 'VmRSS|RssAnon|VmHWM' /proc/$apid/status | tr -s ' \t\n' ' ')"
ip netns exec ${N}node node -e "fetch('http://$net.1:9464/api/stats',{headers:{authorization:'Bearer t'}}).then(r=>r.text()).then(t=>console.log('stats', t.slice(0,400)))" 2>&1 | head -3
ip netns exec ${N}node node -e "(async()=>{let n=0,c=null;do{const r=await fetch('http://$net.1:9464/api/flows?limit=1000'+(c?'&cursor='+encodeURIComponent(c):''),{headers:{authorization:'Bearer t'}});const j=await r.json();n+=j.flows.length;c=j.next}while(c);console.log('flows on /api/flows', n)})()"
kill -TERM $apid $spid; sleep 1
for n in node srv cli; do ip netns del $N$n; done
buildah umount $c >/dev/null; buildah rm $c >/dev/null; rm -rf $data "$data.agent.log"

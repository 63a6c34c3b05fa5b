#!/usr/bin/env bash
# Side-by-side load on loopback: a small HTTPS upstream (NGINX answering a fixed PodList), the gateway in front of it
# (AlwaysAllow, token authentication, Impersonate, no audit), the same gateway with audit on (Metadata-level policy, log
# backend to a file in the temp dir; one process in blocking mode, one in batch mode), and NGINX as a TLS reverse proxy with the equivalent fair
# config (upstream keepalive, HTTP/1.1 upstream, 2 workers). Drives each with wrk (HTTP/1.1) and h2load (HTTP/2) and
# prints req/s, p50, p99, the ratios gateway/direct and gateway/nginx, and audit-on/audit-off. Bounded: DURATION seconds per run, loopback only.
#
#   bench/load/run.sh            # DURATION=10 CONNECTIONS=50
#   DURATION=5 bench/load/run.sh
#   DURATION=5 ROUNDS=3 bench/load/run.sh   # gateway variants in 3 rotating rounds, req/s averaged
#   WARMUP=20 (default) seconds of load on each gateway before anything is measured: on 2 shared cores the .NET
#   tiered JIT is still compiling and instrumenting (PGO) for 10 s and more, which alone halves req/s.
# Besides req/s, each gateway's CPU time per request (utime+stime from /proc over the measured wrk run) is printed:
# it depends far less on what else the shared machine is doing than req/s does.
#   PAIRED=10 bench/load/run.sh   # also 10 paired rounds: audit-off and one audit-on gateway loaded at the same time
#   (wrk -t1 -c25 each, DURATION s), so that load from elsewhere hits both alike; prints their CPU per request ratio.
#   TOGGLE=12 bench/load/run.sh   # also 12 toggled rounds: each audit-on gateway runs at the harness's Metadata policy
#   and at level None in turn, switched by hot reload within the same process (ABBA order); prints the mean of the
#   rounds' Metadata/None ratios of req/s and CPU per request. ONLY_TOGGLE=1 skips everything else;
#   TOGGLE_LEVEL=None toggles None against None (the method's A/A check).
#   L5TOGGLE=12 bench/load/run.sh   # also 12 toggled rounds of layer 5 on the audit-off gateway: API Priority and
#   Fairness (default objects) plus an admission.rateLimits block (User and Server buckets too large to refuse) against
#   APF disabled and no rate limits, switched by hot reload of portcullis.yaml (ABBA order); prints the mean of the
#   rounds' on/off ratios. ONLY_L5=1 skips everything else; L5TOGGLE_ON=off toggles off against off (A/A check).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
H2_REQUESTS=${H2_REQUESTS:-40000}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-20}
for cmd in nginx wrk h2load openssl dotnet curl; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd (apt-get install nginx-light wrk nghttp2-client)"; exit 2; }
done

work=$(mktemp -d /tmp/portcullis-load.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -z "${KEEP:-}" ] || trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; echo "kept $work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
UP=$(free_port); NG=$(free_port); GW=$(free_port); ADM=$(free_port)
GWB=$(free_port); ADMB=$(free_port); GWT=$(free_port); ADMT=$(free_port)

cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=load-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf "%b" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
issue gateway "/CN=portcullis-gateway" "extendedKeyUsage=clientAuth\n"
TOKEN=load-$(openssl rand -hex 12)
echo "$TOKEN,loader,uid-1,\"developers\"" > tokens.csv

body='{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}'
mkdir -p nginx-temp
cat > nginx.conf <<NGX
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-temp/body; proxy_temp_path $work/nginx-temp/proxy;
  fastcgi_temp_path $work/nginx-temp/fcgi; uwsgi_temp_path $work/nginx-temp/uwsgi; scgi_temp_path $work/nginx-temp/scgi;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream apiserver { server 127.0.0.1:$UP; keepalive 64; }
  server {   # the stand-in kube-apiserver
    listen 127.0.0.1:$UP ssl http2;
    ssl_certificate $work/server.crt; ssl_certificate_key $work/server.key;
    ssl_client_certificate $work/ca.crt; ssl_verify_client optional;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '$body'; }
  }
  server {   # NGINX as the comparison proxy
    listen 127.0.0.1:$NG ssl http2;
    ssl_certificate $work/server.crt; ssl_certificate_key $work/server.key;
    keepalive_requests 1000000;
    location / {
      proxy_pass https://apiserver;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header Impersonate-User "loader";
      proxy_ssl_certificate $work/gateway.crt; proxy_ssl_certificate_key $work/gateway.key;
      proxy_ssl_trusted_certificate $work/ca.crt; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_session_reuse on;
      proxy_buffering off;
    }
  }
}
NGX
nginx -p "$work" -c "$work/nginx.conf" & pids+=($!)

cat > upstream.kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: up, cluster: {server: "https://127.0.0.1:$UP", certificate-authority: ca.crt}}]
users: [{name: gw, user: {client-certificate: gateway.crt, client-key: gateway.key}}]
contexts: [{name: up, context: {cluster: up, user: gw}}]
current-context: up
KC
cat > portcullis.yaml <<YML
apiVersion: portcullis.dev/v1alpha1
kind: GatewayConfiguration
listeners: [{address: "127.0.0.1:$GW"}]
tls: {certFile: server.crt, keyFile: server.key}
authentication: {tokenAuthFile: tokens.csv}
authorization: {modes: [AlwaysAllow]}
upstream: {kubeconfig: upstream.kubeconfig}
admin: {address: "127.0.0.1:$ADM", logFormat: text}
YML
# Audit on: every request gets one ResponseComplete event at Metadata level, written to a file in the temp dir.
cat > audit-policy.yaml <<POL
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
POL
audit_config() { # port admin-port mode
  sed -e "s/127.0.0.1:$GW/127.0.0.1:$1/" -e "s/127.0.0.1:$ADM/127.0.0.1:$2/" portcullis.yaml
  echo "audit: {policyFile: audit-policy.yaml, log: {path: audit-$3.log, mode: $3}}"
}
audit_config "$GWB" "$ADMB" blocking > portcullis-audit-blocking.yaml
audit_config "$GWT" "$ADMT" batch > portcullis-audit-batch.yaml
dotnet build -c Release "$root/src/Portcullis.Cli" -v:q -nologo >/dev/null
cli="$root/src/Portcullis.Cli/bin/Release/net10.0/portcullis.dll"
declare -A gwpid
dotnet "$cli" serve --config portcullis.yaml > gateway.log 2>&1 & pids+=($!); gwpid[gateway]=$!
dotnet "$cli" serve --config portcullis-audit-blocking.yaml > gateway-audit-blocking.log 2>&1 & pids+=($!); gwpid[audit-blocking]=$!
dotnet "$cli" serve --config portcullis-audit-batch.yaml > gateway-audit-batch.log 2>&1 & pids+=($!); gwpid[audit-batch]=$!

wait_for() { for _ in $(seq 1 300); do curl -ks -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; cat gateway.log; exit 1; }
wait_for "https://127.0.0.1:$UP/"; wait_for "https://127.0.0.1:$NG/"; wait_for "http://127.0.0.1:$ADM/healthz"
wait_for "http://127.0.0.1:$ADMB/healthz"; wait_for "http://127.0.0.1:$ADMT/healthz"

path=/api/v1/namespaces/default/pods
auth="Authorization: Bearer $TOKEN"
declare -A rps p50 p99 cpu cpusum
ticks() { [ -n "${gwpid[$1]:-}" ] && awk '{print $14 + $15}' "/proc/${gwpid[$1]}/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
run_wrk() { # name url [gateway whose CPU to count, default name]
  local key=${3:-$1} t0; t0=$(ticks "$key")
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$auth" "$2" > "wrk-$1.txt" 2>&1 || true
  rps[$1]=$(awk '/Requests\/sec/ {print $2}' "wrk-$1.txt")
  # CPU microseconds the gateway process spent per request during this run (none for direct and nginx).
  cpu[$1]=$(awk -v a="$t0" -v b="$(ticks "$key")" -v hz="$hz" '/requests in/ { if (b > a) printf "%.1f", (b - a) * 1e6 / hz / $1 }' "wrk-$1.txt")
  p50[$1]=$(awk '$1=="50%" {print $2}' "wrk-$1.txt")
  p99[$1]=$(awk '$1=="99%" {print $2}' "wrk-$1.txt")
}
run_h2() { # name url
  h2load -n"$H2_REQUESTS" -c"$CONNECTIONS" -m10 -H "authorization: Bearer $TOKEN" "$2" > "h2-$1.txt" 2>&1 || true
  rps[h2-$1]=$(awk '/^finished in/ {print $4}' "h2-$1.txt" | tr -d ',')
  p50[h2-$1]=$(awk '/^time for request:/ {print $6}' "h2-$1.txt")
  p99[h2-$1]="(max ${p50[h2-$1]:+$(awk '/^time for request:/ {print $5}' "h2-$1.txt")})"
}
# Warm-up (JIT tiering and PGO, TLS session caches, upstream keepalive pools), not measured; h2 too, so its code is
# compiled before the h2 runs.
wrk -t2 -c"$CONNECTIONS" -d2s -H "$auth" "https://127.0.0.1:$NG$path" >/dev/null 2>&1 || true
for port in "$GW" "$GWB" "$GWT"; do
  wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" -H "$auth" "https://127.0.0.1:$port$path" >/dev/null 2>&1 || true
  h2load -n5000 -c"$CONNECTIONS" -m10 -H "authorization: Bearer $TOKEN" "https://127.0.0.1:$port$path" >/dev/null 2>&1 || true
done

[ -z "${ONLY_GATEWAY:-}" ] || { run_wrk gateway "https://127.0.0.1:$GW$path"; cat wrk-gateway.txt; tail -20 gateway.log; exit 0; }

# Toggled rounds: each audit-on gateway alternates, within the same process, between the harness's policy (level
# TOGGLE_LEVEL, default Metadata: state "on") and a policy of level None (state "off": the policy is evaluated,
# nothing is recorded or written), switched by hot reload of audit-policy.yaml. Same process, same compiled code and
# memory layout for both halves of each pair, so the ratio is free of the process-to-process spread (dynamic PGO,
# placement) that separate gateways show. TOGGLE_LEVEL=None is the A/A check of the method itself.
declare -A toggled
TOGGLE=${TOGGLE:-0}
TOGGLE_LEVEL=${TOGGLE_LEVEL:-Metadata}
level_count() { # admin-port level
  curl -s "http://127.0.0.1:$1/metrics" | awk -v k="apiserver_audit_level_total{level=\"$2\"}" '$1 == k {print $2}'
}
set_level() { # level [marker]: rewrite the policy, then wait until both audit gateways count requests at that level.
  # The marker comment makes each rewrite a change, so that an A/A toggle (None to None) is reloaded too.
  local level=$1 pair port adm before after i
  printf '# %s\napiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: %s\n' "${2:-}" "$level" > audit-policy.yaml.new
  mv audit-policy.yaml.new audit-policy.yaml
  for pair in "$GWB:$ADMB" "$GWT:$ADMT"; do
    port=${pair%%:*}; adm=${pair##*:}
    for i in $(seq 1 100); do
      before=$(level_count "$adm" "$level")
      curl -ks -o /dev/null -H "$auth" "https://127.0.0.1:$port$path"
      after=$(level_count "$adm" "$level")
      [ "$before" = "$after" ] || break
      [ "$i" -lt 100 ] || { echo "audit level $level not in force on port $port"; exit 1; }
      sleep 0.1
    done
  done
}
toggle_rounds() {
  local r s t m level
  declare -A ratios   # "<gateway>-rps" / "<gateway>-cpu": the rounds' on/off ratios, space-separated
  for r in $(seq 1 "$TOGGLE"); do
    # ABBA order across rounds so drift in machine load does not favour one state.
    local states=(on off); [ $((r % 2)) -eq 1 ] || states=(off on)
    for s in "${states[@]}"; do
      level=None; [ "$s" = off ] || level=$TOGGLE_LEVEL
      set_level "$level" "round $r $s"
      for t in audit-blocking audit-batch; do
        run_wrk "$t-$s" "${gwurl[$t]}" "$t"
        echo "toggle round $r $t $s (level $level) ${rps[$t-$s]:-0} req/s ${cpu[$t-$s]:-?} cpu-us/req"
      done
    done
    for t in audit-blocking audit-batch; do
      ratios[$t-rps]+="$(ratio "${rps[$t-on]:-0}" "${rps[$t-off]:-0}" %.3f) "
      ratios[$t-cpu]+="$(ratio "${cpu[$t-on]:-0}" "${cpu[$t-off]:-0}" %.3f) "
    done
  done
  for t in audit-blocking audit-batch; do
    for m in rps cpu; do
      # The mean of the rounds' ratios with its standard error (the rounds' spread / sqrt(rounds)); a round that
      # measured nothing (n/a) is left out.
      toggled[$t-$m]=$(echo "${ratios[$t-$m]:-}" | awk '{
        for (i = 1; i <= NF; i++) if ($i != "n/a") { n++; a += $i; q += $i * $i }
        if (n == 0) { print "n/a"; exit } m = a / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
        printf "%.3f (se %.3f, %d rounds)", m, sqrt(v / n), n }')
    done
  done
  set_level Metadata restored
}
run_wrk direct "https://127.0.0.1:$UP$path"
run_wrk nginx "https://127.0.0.1:$NG$path"
# The audit-off and audit-on gateways: ROUNDS rounds in rotating order, req/s averaged over the rounds (latencies from the
# last round), so that a burst of load from elsewhere on the shared machine does not land on one variant only.
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b > 0) printf f, a / b; else print "n/a" }'; }
declare -A gwurl=([gateway]="https://127.0.0.1:$GW$path" [audit-blocking]="https://127.0.0.1:$GWB$path" [audit-batch]="https://127.0.0.1:$GWT$path")
declare -A sum
gw_rounds() { # wrk|h2
  local order=(gateway audit-blocking audit-batch) r i t
  for t in "${order[@]}"; do sum[$1-$t]=0; done
  for r in $(seq 0 $((ROUNDS - 1))); do
    for i in 0 1 2; do
      t=${order[$(((i + r) % 3))]}
      if [ "$1" = wrk ]; then
        run_wrk "$t" "${gwurl[$t]}"; v=${rps[$t]}
        cpusum[$t]=$(awk -v a="${cpusum[$t]:-0}" -v b="${cpu[$t]:-0}" 'BEGIN { print a + b }')
        echo "round $((r + 1)) $1 $t ${v:-0} req/s ${cpu[$t]:-?} cpu-us/req"
      else
        run_h2 "$t" "${gwurl[$t]}"; v=${rps[h2-$t]}
        echo "round $((r + 1)) $1 $t ${v:-0} req/s"
      fi
      sum[$1-$t]=$(awk -v a="${sum[$1-$t]}" -v b="${v:-0}" 'BEGIN { print a + b }')
    done
  done
  for t in "${order[@]}"; do
    v=$(awk -v a="${sum[$1-$t]}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", a / n }')
    if [ "$1" = wrk ]; then
      rps[$t]=$v
      cpu[$t]=$(awk -v a="${cpusum[$t]}" -v n="$ROUNDS" 'BEGIN { printf "%.1f", a / n }')
    else
      rps[h2-$t]=$v
    fi
  done
}
# Layer 5 toggled rounds on the audit-off gateway: "on" is APF enabled with kube-apiserver's default objects and a
# rateLimits block of User and Server buckets (qps and burst far above what the harness sends, so every request takes its
# tokens and none is refused); "off" is APF disabled and no rateLimits. Switched by hot reload of portcullis.yaml; a state
# is in force once a response carries (on) or lacks (off) the X-Kubernetes-PF-FlowSchema-UID header.
declare -A l5toggled
L5TOGGLE=${L5TOGGLE:-0}
L5TOGGLE_ON=${L5TOGGLE_ON:-on}
set_l5() { # on|off marker
  [ -f portcullis-base.yaml ] || cp portcullis.yaml portcullis-base.yaml
  { printf '# %s\n' "$2"; cat portcullis-base.yaml
    if [ "$1" = on ]; then
      echo "admission:"
      echo "  priorityAndFairness: {enabled: true}"
      echo "  rateLimits: [{type: User, qps: 1000000, burst: 1000000}, {type: Server, qps: 1000000, burst: 1000000}]"
    else
      echo "admission: {priorityAndFairness: {enabled: false}}"
    fi; } > portcullis.yaml.new
  mv portcullis.yaml.new portcullis.yaml
  local i has
  for i in $(seq 1 100); do
    has=$(curl -ks -D - -o /dev/null -H "$auth" "https://127.0.0.1:$GW$path" | grep -ci '^x-kubernetes-pf-flowschema-uid' || true)
    if { [ "$1" = on ] && [ "$has" -gt 0 ]; } || { [ "$1" = off ] && [ "$has" -eq 0 ]; }; then break; fi
    [ "$i" -lt 100 ] || { echo "layer 5 $1 not in force"; tail -5 gateway.log; exit 1; }
    sleep 0.1
  done
  # Steady state: a new configuration's levels start at nominal − lendable / 2 (global-default: 37 seats, fewer than
  # the harness's connections) until the first borrowing adjustment, at most 10 s later, sets the current limits.
  # Measure after it, as a gateway that has been serving more than 10 s runs.
  if [ "$1" = on ]; then
    local phase want
    for phase in new adjusted; do # the new levels' 37 shown, then the first adjustment's value
      for i in $(seq 1 300); do
        want=$(curl -s "http://127.0.0.1:$ADM/metrics" | awk '$1 == "apiserver_flowcontrol_current_limit_seats{priority_level=\"global-default\"}" {print $2}')
        if [ "$phase" = new ] && [ "$want" = 37 ]; then break; fi
        if [ "$phase" = adjusted ] && [ -n "$want" ] && [ "$want" != 37 ]; then return 0; fi
        [ "$i" -lt 300 ] || { echo "global-default: no $phase limit within 30 s"; exit 1; }
        sleep 0.1
      done
    done
  fi
}
l5_rounds() {
  local r s on=$L5TOGGLE_ON ratios_rps="" ratios_cpu=""
  for r in $(seq 1 "$L5TOGGLE"); do
    local states=(on off); [ $((r % 2)) -eq 1 ] || states=(off on)
    for s in "${states[@]}"; do
      if [ "$s" = on ]; then set_l5 "$on" "round $r $s"; else set_l5 off "round $r $s"; fi
      run_wrk "l5-$s" "${gwurl[gateway]}" gateway
      echo "l5 round $r $s ${rps[l5-$s]:-0} req/s ${cpu[l5-$s]:-?} cpu-us/req"
    done
    ratios_rps+="$(ratio "${rps[l5-on]:-0}" "${rps[l5-off]:-0}" %.3f) "
    ratios_cpu+="$(ratio "${cpu[l5-on]:-0}" "${cpu[l5-off]:-0}" %.3f) "
  done
  for m in rps cpu; do
    local list=$ratios_rps; [ "$m" = rps ] || list=$ratios_cpu
    l5toggled[$m]=$(echo "$list" | awk '{
      for (i = 1; i <= NF; i++) if ($i != "n/a") { n++; a += $i; q += $i * $i }
      if (n == 0) { print "n/a"; exit } m = a / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
      printf "%.3f (se %.3f, %d rounds)", m, sqrt(v / n), n }')
  done
  set_l5 off restored
}
if [ -n "${ONLY_L5:-}" ]; then
  [ "$L5TOGGLE" -gt 0 ] || L5TOGGLE=4
  l5_rounds
  grep -h "Non-2xx" wrk-l5-on.txt wrk-l5-off.txt || true
  echo
  echo "toggled ($L5TOGGLE rounds, ${DURATION}s wrk runs, $CONNECTIONS connections, HTTP/1.1) layer 5 $L5TOGGLE_ON / off in the same process:"
  echo "  req/s ${l5toggled[rps]}  cpu per request ${l5toggled[cpu]}"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
if [ -n "${ONLY_TOGGLE:-}" ]; then
  [ "$TOGGLE" -gt 0 ] || TOGGLE=4
  toggle_rounds
  echo
  echo "toggled ($TOGGLE rounds, ${DURATION}s wrk runs, $CONNECTIONS connections, HTTP/1.1) audit $TOGGLE_LEVEL / None in the same process:"
  echo "  blocking: req/s ${toggled[audit-blocking-rps]}  cpu per request ${toggled[audit-blocking-cpu]}"
  echo "  batch:    req/s ${toggled[audit-batch-rps]}  cpu per request ${toggled[audit-batch-cpu]}"
  exit 0
fi
gw_rounds wrk
run_h2 direct "https://127.0.0.1:$UP$path"
run_h2 nginx "https://127.0.0.1:$NG$path"
gw_rounds h2

# Paired rounds: the audit-off gateway and one audit-on gateway under equal load at the same time. Their CPU time per
# request is compared within each round; the rounds' ratios are averaged.
declare -A paired
PAIRED=${PAIRED:-0}
if [ "$PAIRED" -gt 0 ]; then
  for t in audit-blocking audit-batch; do
    sumr=0; counted=0
    for r in $(seq 1 "$PAIRED"); do
      a0=$(ticks gateway); b0=$(ticks "$t")
      wrk -t1 -c$((CONNECTIONS / 2)) -d"${DURATION}s" -H "$auth" "${gwurl[gateway]}" > "pair-off.txt" 2>&1 & w1=$!
      wrk -t1 -c$((CONNECTIONS / 2)) -d"${DURATION}s" -H "$auth" "${gwurl[$t]}" > "pair-on.txt" 2>&1 & w2=$!
      wait "$w1" "$w2" || true
      a1=$(ticks gateway); b1=$(ticks "$t")
      na=$(awk '/requests in/ {print $1}' pair-off.txt); nb=$(awk '/requests in/ {print $1}' pair-on.txt)
      q=$(awk -v ca=$((a1 - a0)) -v cb=$((b1 - b0)) -v na="${na:-0}" -v nb="${nb:-0}" 'BEGIN { if (na > 0 && nb > 0 && ca > 0) printf "%.3f", (cb / nb) / (ca / na) }')
      echo "paired round $r $t: audit-off ${na:-0} requests, $t ${nb:-0} requests, cpu per request on/off ${q:-n/a}"
      # A round that measured nothing (a failed wrk) is left out rather than averaged in as 0.
      [ -z "$q" ] || { sumr=$(awk -v a="$sumr" -v b="$q" 'BEGIN { print a + b }'); counted=$((counted + 1)); }
    done
    paired[$t]=$(awk -v a="$sumr" -v n="$counted" 'BEGIN { if (n > 0) printf "%.3f", a / n; else print "n/a" }')
  done
fi
[ "$TOGGLE" -eq 0 ] || toggle_rounds
[ "$L5TOGGLE" -eq 0 ] || l5_rounds
echo
echo "load: ${DURATION}s per wrk run, $ROUNDS round(s) of the gateway variants, $CONNECTIONS connections, h2load $H2_REQUESTS requests x $CONNECTIONS connections x 10 streams, ${WARMUP}s warm-up per gateway, loopback, 2 cores shared by all processes"
printf "%-14s %-8s %12s %10s %10s %14s\n" target proto req/s p50 p99 "cpu us/req"
for t in direct nginx gateway audit-blocking audit-batch; do
  printf "%-14s %-8s %12s %10s %10s %14s\n" "$t" "http/1.1" "${rps[$t]}" "${p50[$t]}" "${p99[$t]}" "${cpu[$t]:--}"
done
for t in direct nginx gateway audit-blocking audit-batch; do
  printf "%-14s %-8s %12s %10s %10s\n" "$t" "h2" "${rps[h2-$t]}" "${p50[h2-$t]}" "-"
done
echo "ratio http/1.1 gateway/direct $(ratio "${rps[gateway]}" "${rps[direct]}")  gateway/nginx $(ratio "${rps[gateway]}" "${rps[nginx]}")"
echo "ratio h2       gateway/direct $(ratio "${rps[h2-gateway]}" "${rps[h2-direct]}")  gateway/nginx $(ratio "${rps[h2-gateway]}" "${rps[h2-nginx]}")"
echo "ratio http/1.1 audit-on/audit-off blocking $(ratio "${rps[audit-blocking]}" "${rps[gateway]}")  batch $(ratio "${rps[audit-batch]}" "${rps[gateway]}")"
echo "ratio http/1.1 cpu per request, audit-on/audit-off blocking $(ratio "${cpu[audit-blocking]}" "${cpu[gateway]}")  batch $(ratio "${cpu[audit-batch]}" "${cpu[gateway]}")"
[ "$TOGGLE" -eq 0 ] || echo "toggled ($TOGGLE rounds, same process) audit $TOGGLE_LEVEL/None blocking: req/s ${toggled[audit-blocking-rps]} cpu per request ${toggled[audit-blocking-cpu]}; batch: req/s ${toggled[audit-batch-rps]} cpu per request ${toggled[audit-batch-cpu]}"
[ "$L5TOGGLE" -eq 0 ] || echo "toggled ($L5TOGGLE rounds, same process) layer 5 $L5TOGGLE_ON/off: req/s ${l5toggled[rps]} cpu per request ${l5toggled[cpu]}"
[ "$PAIRED" -gt 0 ] && echo "paired ($PAIRED rounds) cpu per request, audit-on/audit-off blocking ${paired[audit-blocking]}  batch ${paired[audit-batch]}"
echo "ratio h2       audit-on/audit-off blocking $(ratio "${rps[h2-audit-blocking]}" "${rps[h2-gateway]}")  batch $(ratio "${rps[h2-audit-batch]}" "${rps[h2-gateway]}")"
for t in gateway audit-blocking audit-batch; do
  errors=$(grep -h "Non-2xx" "wrk-$t.txt" || true)
  [ -z "$errors" ] || echo "$t: $errors"
done
# Sanity: the audit-on gateways really wrote events (lines so far; batch may still hold its last batch).
for m in blocking batch; do echo "audit-$m.log: $(cat audit-$m.log* 2>/dev/null | wc -l) events"; done

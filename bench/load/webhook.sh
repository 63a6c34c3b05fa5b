#!/usr/bin/env bash
# Whole-process latency of portcullis webhook on loopback: a fixed rate of TokenReviews and then SubjectAccessReviews
# (HTTP/2 over mTLS, as kube-apiserver sends them) for DURATION seconds each, from the load tool in
# bench/Portcullis.Benchmarks (webhook-load). Answers are cached decisions: a token-file token (the chain's token cache)
# and an RBAC allow. Prints the load average before and after, then p50/p90/p99/p99.9/max per review kind.
#
#   bench/load/webhook.sh                 # RATE=1000 DURATION=10
#   RATE=500 DURATION=5 bench/load/webhook.sh
#   PIN=1 bench/load/webhook.sh          # the webhook on CPU 0 and the load tool on CPU 1 (taskset), as the API server and
#                                        # its webhook run as separate processes, usually on separate machines
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RATE=${RATE:-1000}
DURATION=${DURATION:-10}
for cmd in openssl dotnet curl python3; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd"; exit 2; }
done
work=$(mktemp -d /tmp/portcullis-webhook-load.XXXXXX)
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port); ADMIN=$(free_port)
cd "$work"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null; }
issue() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2.key" -out "$2.csr" -subj "$3" 2>/dev/null
  printf "%b" "$4" > "$2.ext"
  openssl x509 -req -in "$2.csr" -CA "$1.crt" -CAkey "$1.key" -CAcreateserial -out "$2.crt" -days 2 -extfile "$2.ext" 2>/dev/null
}
ca serving-ca; ca apiserver-client-ca
issue serving-ca server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
issue apiserver-client-ca apiserver "/CN=kube-apiserver-webhook-client" "extendedKeyUsage=clientAuth"
echo 'token-jane-0123456789abcdef0123456789abcdef,jane,u-1,"developers,qa"' > tokens.csv
printf 'apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: mallory\n  reason: stolen laptop\n' > deny.yaml
cat > rbac.yaml <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: developers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
YAML
cat > webhook.yaml <<YAML
apiVersion: portcullis.dev/v1alpha1
kind: GatewayConfiguration
listeners: [{address: 127.0.0.1:$PORT}]
tls: {certFile: server.crt, keyFile: server.key, clientCAFile: apiserver-client-ca.crt}
authentication: {tokenAuthFile: tokens.csv}
authorization:
  modes: [RBAC]
  rbac: {manifests: [rbac.yaml]}
  denyListFile: deny.yaml
admin: {address: 127.0.0.1:$ADMIN, logFormat: text}
YAML
dotnet build -c Release "$root/src/Portcullis.Cli" -v:q -nologo >/dev/null
dotnet build -c Release "$root/bench/Portcullis.Benchmarks" -v:q -nologo >/dev/null
cli="$root/src/Portcullis.Cli/bin/Release/net10.0/portcullis.dll"
load="$root/bench/Portcullis.Benchmarks/bin/Release/net10.0/Portcullis.Benchmarks.dll"
server_cpu=(); client_cpu=()
if [ -n "${PIN:-}" ]; then server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); fi
"${server_cpu[@]}" dotnet "$cli" webhook --config webhook.yaml > webhook.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
# The server's own time per review (body read to answer written) over the measured seconds only: its histogram
# (portcullis_webhook_review_duration_seconds) is read after the warm-up and after the run, and the difference gives the
# share of reviews answered within each bucket bound and the bound under which 99 % were answered.
buckets() { curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E "^portcullis_webhook_review_duration_seconds_bucket\{review=\"$1\"" || true; }
server_share() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def parse(text):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'le="([^"]+)"\} (\S+)', text)}
before, after = parse(open(sys.argv[1]).read()), parse(open(sys.argv[2]).read())
bounds = sorted(after, key=lambda b: float('inf') if b == '+Inf' else float(b))
total = after['+Inf'] - before.get('+Inf', 0)
p99 = next((b for b in bounds if (after[b] - before.get(b, 0)) >= 0.99 * total), '+Inf')
within_1ms = (after['0.001'] - before.get('0.001', 0)) / total if total else float('nan')
print(f"  server side ({int(total)} reviews): {within_1ms:.2%} answered within 1 ms; p99 <= {p99} s (histogram bucket bound)")
PY
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in tokenreview sar; do
  review=TokenReview; [ "$kind" = sar ] && review=SubjectAccessReview
  # warm-up run (JIT, connection, caches): its reviews are excluded from the server-side figure
  "${client_cpu[@]}" dotnet "$load" webhook-load "https://127.0.0.1:$PORT" serving-ca.crt apiserver.crt apiserver.key "$RATE" 2 "$kind" >/dev/null
  buckets "$review" > before.txt
  "${client_cpu[@]}" dotnet "$load" webhook-load "https://127.0.0.1:$PORT" serving-ca.crt apiserver.crt apiserver.key "$RATE" "$DURATION" "$kind"
  buckets "$review" > after.txt
  server_share before.txt after.txt
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^portcullis_webhook_reviews_total' || true

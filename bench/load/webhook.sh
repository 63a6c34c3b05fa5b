#!/usr/bin/env bash
# Whole-process latency of portcullis webhook on loopback: a fixed rate of TokenReviews and then SubjectAccessReviews
# (HTTP/2 over mTLS, as kube-apiserver sends them) for DURATION seconds each after a WARMUP, from the load tool in
# bench/Portcullis.Benchmarks (webhook-load). Answers are cached decisions: a token-file token (the chain's token cache)
# and an RBAC allow. For each kind it prints
#   - the round trip the load tool measured (p50/p90/p99/p99.9/max),
#   - the server side: portcullis_webhook_review_duration_seconds (request entering the pipeline to answer written) read
#     from /metrics right before and after the measured run,
#   - this machine: how late a 1 ms sleep in the load tool woke during the run.
# Then, when nginx is installed, the same client against NGINX answering a constant TokenReview over the same HTTP/2 and
# mutual TLS, and Portcullis again, alternating: the ratio of the two in one run (the machine is shared and noisy).
#
#   bench/load/webhook.sh                       # RATE=1000 DURATION=10 WARMUP=5 ARRIVALS=uniform
#   ARRIVALS=poisson bench/load/webhook.sh      # exponentially distributed gaps of the same mean
#   BASELINE=0 bench/load/webhook.sh            # without the NGINX comparison
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RATE=${RATE:-1000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
ARRIVALS=${ARRIVALS:-uniform}
BASELINE=${BASELINE:-1}
for cmd in openssl dotnet curl python3; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd"; exit 2; }
done
work=$(mktemp -d /tmp/portcullis-webhook-load.XXXXXX)
pid=""; npid=""
cleanup() { for p in $pid $npid; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
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
dotnet "$cli" webhook --config webhook.yaml > webhook.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
run() { # run URL KIND LABEL [--metrics ADMIN]
  local url=$1 kind=$2 label=$3; shift 3
  dotnet "$load" webhook-load "$url" serving-ca.crt apiserver.crt apiserver.key "$RATE" "$DURATION" "$kind" \
    --arrivals "$ARRIVALS" --warmup "$WARMUP" --label "$label" "$@"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run "https://127.0.0.1:$PORT" tokenreview "portcullis " --metrics "http://127.0.0.1:$ADMIN"
run "https://127.0.0.1:$PORT" sar "portcullis " --metrics "http://127.0.0.1:$ADMIN"
if [ "$BASELINE" != 0 ] && command -v nginx >/dev/null; then
  NPORT=$(free_port)
  mkdir -p nginx
  answer='{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":true,"user":{"username":"jane","uid":"u-1","groups":["developers","qa","system:authenticated"]}}}'
  cat > nginx/nginx.conf <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NPORT ssl http2;
    ssl_protocols TLSv1.3;
    ssl_certificate $work/server.crt;
    ssl_certificate_key $work/server.key;
    ssl_client_certificate $work/apiserver-client-ca.crt;
    ssl_verify_client on;
    location / { default_type application/json; return 200 '$answer'; }
  }
}
NGINX
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  npid=$!
  for _ in $(seq 1 100); do [ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$NPORT/")" = 400 ] && break; sleep 0.1; done
  for _ in 1 2; do
    run "https://127.0.0.1:$NPORT" tokenreview "nginx      "
    run "https://127.0.0.1:$PORT" tokenreview "portcullis " --metrics "http://127.0.0.1:$ADMIN"
  done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^portcullis_webhook_reviews_total' || true

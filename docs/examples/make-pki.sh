#!/usr/bin/env bash
# Makes the files docs/examples/portcullis.yaml names, with openssl (EC P-256), in docs/examples/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p pki
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout pki/ca.key -out pki/ca.crt -days 30 \
  -subj "/CN=portcullis-example-ca" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name subject ext
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "pki/$1.key" -out "pki/$1.csr" -subj "$2" 2>/dev/null
  printf "%b" "$3" > "pki/$1.ext"
  openssl x509 -req -in "pki/$1.csr" -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial -out "pki/$1.crt" -days 30 -extfile "pki/$1.ext" 2>/dev/null
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
issue gateway "/CN=portcullis-gateway" "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"
issue jane "/CN=jane/O=developers" "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"
printf 'example-token-%s,ci-bot,uid-ci,"ci,deployers"\n' "$(openssl rand -hex 8)" > tokens.csv
cat > upstream.kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: upstream
  cluster: {server: "https://127.0.0.1:7443", certificate-authority: pki/ca.crt}
users:
- name: gateway
  user: {client-certificate: pki/gateway.crt, client-key: pki/gateway.key}
contexts:
- name: upstream
  context: {cluster: upstream, user: gateway}
current-context: upstream
KC
echo "wrote pki/, tokens.csv and upstream.kubeconfig in $(pwd)"

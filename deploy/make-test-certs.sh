#!/usr/bin/env bash
# Makes a throw-away CA and the certificates Mugai's TLS listeners and their
# clients use, for tests and trials — never for production, where the
# municipality's own CA issues them.
#
#   bash deploy/make-test-certs.sh DIR
#
# DIR/ca.crt, ca.key                     the test CA (both listeners' client CA and the clients' server CA)
# DIR/{ingress,egress,admin}.crt, .key   one server certificate per mugaid listener,
#                                        for DNS:localhost and IP:127.0.0.1
# DIR/{milter,internet,lgwan,admin-client,admin-approver,admin-viewer}.crt, .key
#                                        client certificates; the identity is the CN
#                                        (the admin ones: "administrator",
#                                        "approver", "viewer"; [admin] roles
#                                        gives them their roles)
set -euo pipefail

dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=30

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$days" \
  -subj "/O=Mugai test/CN=Mugai test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# issue NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
issue() {
  local name=$1 cn=$2 usage=$3 san=${4:-}
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [ -n "$san" ] && ext+="
subjectAltName=$san"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/O=Mugai test/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile <(printf '%s\n' "$ext") -out "$name.crt" 2>/dev/null
  rm -f "$name.csr"
  chmod 600 "$name.key"
}

for listener in ingress egress admin; do
  issue "$listener" "mugaid $listener" serverAuth "DNS:localhost,IP:127.0.0.1"
done
issue milter mugai-milter clientAuth
issue internet internet-side clientAuth
issue lgwan lgwan-user clientAuth
issue admin-client administrator clientAuth
issue admin-approver approver clientAuth
issue admin-viewer viewer clientAuth
chmod 600 ca.key
echo "make-test-certs: CA and certificates in $dir"

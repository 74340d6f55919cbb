#!/usr/bin/env bash
# Makes throw-away CAs and the certificates Mugai's TLS listeners and their
# clients use, for tests and trials — never for production, where the
# municipality's own CAs issue them.
#
#   bash deploy/make-test-certs.sh DIR
#
# One CA signs mugaid's server certificates; each side's clients have a CA
# of their own, so that each listener's client_ca_file admits its side only
# (通信経路の分割): an internet-side certificate fails the handshake on the
# egress listener, an LGWAN-side one on ingress, neither reaches admin.
#
# DIR/ca.crt, ca.key                     the server CA: clients verify mugaid with ca.crt
# DIR/{ingress,egress,admin}.crt, .key   one server certificate per mugaid listener,
#                                        for DNS:localhost and IP:127.0.0.1
# DIR/internet-ca.crt, .key              ingress's client CA ([listeners.ingress_tls] client_ca_file)
# DIR/milter.crt, .key                   CN "mugai-milter"
# DIR/internet.crt, .key                 CN "internet-side" (a submitting client)
# DIR/lgwan-ca.crt, .key                 egress's client CA ([listeners.egress_tls] client_ca_file)
# DIR/lgwan.crt, .key                    CN "lgwan-user" (an inbox)
# DIR/lgwan2.crt, .key                   CN "lgwan-user2" (another inbox)
# DIR/admin-ca.crt, .key                 admin's client CA ([listeners.admin_tls] client_ca_file)
# DIR/{admin-client,admin-approver,admin-viewer}.crt, .key
#                                        CN "administrator", "approver", "viewer"
#                                        ([admin] roles gives them their roles)
#
# A client certificate's identity is its CN. Keys are mode 0600.
set -euo pipefail

dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=30

# ca NAME CN
ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days "$days" \
    -subj "/O=Mugai test/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$1.key"
}

# issue CA NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
issue() {
  local ca=$1 name=$2 cn=$3 usage=$4 san=${5:-}
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [ -n "$san" ] && ext+="
subjectAltName=$san"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/O=Mugai test/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days "$days" \
    -extfile <(printf '%s\n' "$ext") -out "$name.crt" 2>/dev/null
  rm -f "$name.csr"
  chmod 600 "$name.key"
}

ca ca "Mugai test server CA"
ca internet-ca "Mugai test internet-side client CA"
ca lgwan-ca "Mugai test LGWAN-side client CA"
ca admin-ca "Mugai test admin client CA"

for listener in ingress egress admin; do
  issue ca "$listener" "mugaid $listener" serverAuth "DNS:localhost,IP:127.0.0.1"
done
issue internet-ca milter mugai-milter clientAuth
issue internet-ca internet internet-side clientAuth
issue lgwan-ca lgwan lgwan-user clientAuth
issue lgwan-ca lgwan2 lgwan-user2 clientAuth
issue admin-ca admin-client administrator clientAuth
issue admin-ca admin-approver approver clientAuth
issue admin-ca admin-viewer viewer clientAuth
echo "make-test-certs: CAs and certificates in $dir"

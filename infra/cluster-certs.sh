#!/usr/bin/env bash
# Certificates for trust between machines (docs/design/0028-cluster-tls.md): a small CA for one
# faas cluster and, per name, a certificate it signs for both TLS server and client use, which
# faasd takes as --tls-ca ca.pem --tls-cert NAME.pem --tls-key NAME-key.pem.
#
#   infra/cluster-certs.sh OUTDIR NAME[:SAN[,SAN...]]...
#   infra/cluster-certs.sh certs gw1:10.0.0.1 node1:10.0.0.11,node1.example node2:10.0.0.12
#
# The CA (OUTDIR/ca.pem, ca-key.pem) is made once and reused by later runs, so certificates for
# new machines can be added. Each NAME gets NAME.pem and NAME-key.pem (replaced when they exist),
# with CN=NAME and the subjectAltNames DNS:NAME plus each SAN: IP addresses become IP SANs, the
# rest DNS SANs. A gateway checks a node's certificate against the host of the node's address
# (or --tls-node-name), so a node's certificate must carry the IP or name gateways dial.
# Keys are P-256, written mode 0600; certificates are valid for 825 days (the CA for 10 years).
# Needs openssl (infra/install-deps.sh).
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR NAME[:IP-or-DNS[,IP-or-DNS...]]..." >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
command -v openssl >/dev/null || {
  echo "$0: openssl is not installed (infra/install-deps.sh installs it)" >&2
  exit 1
}
out=$1
shift
mkdir -p "$out"
umask 077

if [[ ! -s $out/ca.pem || ! -s $out/ca-key.pem ]]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$out/ca-key.pem"
  openssl req -x509 -new -key "$out/ca-key.pem" -sha256 -days 3650 -subj "/CN=faas cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem" 2>/dev/null
fi

for spec in "$@"; do
  name=${spec%%:*}
  sans=
  [[ $spec == *:* ]] && sans=${spec#*:}
  if [[ -z $name || ! $name =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "$0: bad name in \"$spec\" (letters, digits, . _ -)" >&2
    exit 2
  fi
  alt="DNS:$name"
  IFS=',' read -r -a list <<<"$sans"
  for san in "${list[@]}"; do
    [[ -z $san ]] && continue
    if [[ $san =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $san == *:* ]]; then
      alt+=",IP:$san"
    else
      alt+=",DNS:$san"
    fi
  done
  ext=$(mktemp)
  trap 'rm -f "$ext"' EXIT
  cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$alt
EXT
  openssl ecparam -name prime256v1 -genkey -noout -out "$out/$name-key.pem"
  openssl req -new -key "$out/$name-key.pem" -subj "/CN=$name" -out "$out/$name.csr" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" \
    -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$out/$name.pem" 2>/dev/null
  rm -f "$out/$name.csr" "$ext"
  chmod 644 "$out/$name.pem"
done
chmod 644 "$out/ca.pem"

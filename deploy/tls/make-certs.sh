#!/bin/sh
# Make a private CA and a server certificate for the Genesys services.
#   deploy/tls/make-certs.sh OUT_DIR [NAME ...]
# NAMEs are the DNS names or IP addresses clients use to reach the services (default:
# localhost 127.0.0.1 coordinator gateway dashboard). Writes OUT_DIR/ca.pem (give it to every
# client and agent), ca.key (keep it offline), server.pem and server.key (the services).
# Existing files are kept, so re-running never invalidates certificates already handed out.
set -eu
out="${1:?usage: make-certs.sh OUT_DIR [NAME ...]}"
shift
[ "$#" -gt 0 ] || set -- localhost 127.0.0.1 coordinator gateway dashboard
days="${GENESYS_CERT_DAYS:-825}"
mkdir -p "$out"
umask 077

san=""
for name in "$@"; do
    case "$name" in
    *[!0-9.]*) entry="DNS:$name" ;;
    *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
done

if [ ! -s "$out/ca.pem" ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" \
        -subj "/CN=Genesys private CA" -keyout "$out/ca.key" -out "$out/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
fi
if [ ! -s "$out/server.pem" ]; then
    openssl req -newkey rsa:3072 -nodes -sha256 -subj "/CN=$1" \
        -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" \
        > "$out/server.ext"
    openssl x509 -req -sha256 -days "$days" -in "$out/server.csr" -CA "$out/ca.pem" \
        -CAkey "$out/ca.key" -CAcreateserial -extfile "$out/server.ext" -out "$out/server.pem" \
        2>/dev/null
    rm -f "$out/server.csr" "$out/server.ext" "$out/ca.srl"
fi
chmod 644 "$out/ca.pem" "$out/server.pem"
# The services run as uid 10001 in the images and must read the key.
if [ "${GENESYS_CERT_OWNER:-}" ]; then
    chown "$GENESYS_CERT_OWNER" "$out/server.key"
elif [ "$(id -u)" = 0 ]; then
    chown 10001:10001 "$out/server.key"
fi
echo "certificates in $out: ca.pem (clients), server.pem + server.key (services) for $*"

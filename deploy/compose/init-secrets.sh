#!/bin/sh
# Write the secrets deploy/compose/compose.yaml reads (kept if they exist):
#   secrets/store_url     MongoDB URI of the compose replica set
#   secrets/gateway.toml  gateway config with the agents' token hash
#   secrets/llm_token     the agents' gateway token
# Needs `genesys` (pip install genesys) on the host. Certificates: deploy/tls/make-certs.sh.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/secrets}"
mkdir -p "$out"
umask 077
[ -s "$out/store_url" ] || printf '%s\n' "mongodb://mongo:27017/genesys?replicaSet=rs0" > "$out/store_url"
if [ ! -s "$out/gateway.toml" ] || [ ! -s "$out/llm_token" ]; then
    json="$(genesys gateway token --name agents --json)"
    token="$(printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
    hash="$(printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["sha256"])')"
    { cat "$here/gateway.toml.in"
      printf '\n[[auth.tokens]]\nname = "agents"\nrole = "worker"\nsha256 = "%s"\n' "$hash"
    } > "$out/gateway.toml"
    printf '%s\n' "$token" > "$out/llm_token"
fi
# the services read them as uid 10001 inside the images
if [ "$(id -u)" = 0 ]; then
    chown 10001:10001 "$out/store_url" "$out/gateway.toml" "$out/llm_token"
else
    chmod 644 "$out/store_url" "$out/gateway.toml" "$out/llm_token"
    echo "note: not root, so the secrets are made world-readable for uid 10001; run as root to chown them instead" >&2
fi
echo "secrets in $out: store_url, gateway.toml, llm_token"

#!/bin/sh
# Entrypoint of every Genesys image: `entrypoint.sh ROLE [extra flags]`.
# ROLE is coordinator | agent | gateway | dashboard | token. Configuration comes only
# from the environment and mounted files; a missing config file or secret stops the start
# with a message naming it (exit 78, EX_CONFIG). TLS is on unless GENESYS_TLS=off.
set -eu

die() {
    echo "genesys-entrypoint: $*" >&2
    exit 78
}

need_file() {  # need_file WHAT PATH
    [ -n "$2" ] || die "$1: no path given"
    [ -r "$2" ] || die "$1: $2 is missing or unreadable (mount it, or set the variable that names it)"
    [ -s "$2" ] || die "$1: $2 is empty"
}

tls_on() { [ "${GENESYS_TLS:-on}" != "off" ]; }

need_coordinator() {
    [ -n "${GENESYS_COORDINATOR:-}" ] || die "GENESYS_COORDINATOR (host:port of the coordinator) is not set"
}

need_ca() {  # a client of a TLS service needs the CA that signed its certificate
    if tls_on; then
        need_file "CA certificate (GENESYS_CA_CERT)" "${GENESYS_CA_CERT:-}"
        # the gateway (LLM and knowledge services) is signed by the same CA
        export GENESYS_LLM_CA_CERT="${GENESYS_LLM_CA_CERT:-$GENESYS_CA_CERT}"
        export GENESYS_KB_CA_CERT="${GENESYS_KB_CA_CERT:-$GENESYS_CA_CERT}"
    fi
}

need_server_tls() {  # a TLS server needs its certificate and key
    if tls_on; then
        need_file "TLS certificate (GENESYS_TLS_CERT)" "${GENESYS_TLS_CERT:-}"
        need_file "TLS key (GENESYS_TLS_KEY)" "${GENESYS_TLS_KEY:-}"
    fi
}

# A secret given as a file (Docker/Kubernetes secrets) becomes the variable the process reads.
if [ -n "${GENESYS_STORE_URL_FILE:-}" ]; then
    need_file "store URL secret (GENESYS_STORE_URL_FILE)" "$GENESYS_STORE_URL_FILE"
    GENESYS_STORE_URL="$(cat "$GENESYS_STORE_URL_FILE")"
    export GENESYS_STORE_URL
fi

role="${1:-}"
[ -n "$role" ] || die "usage: entrypoint.sh coordinator|agent|gateway|dashboard|token [flags]"
shift

case "$role" in
coordinator)
    config="${GENESYS_CONFIG_FILE:-/etc/genesys/coordinator.toml}"
    need_file "coordinator config (GENESYS_CONFIG_FILE)" "$config"
    need_server_tls
    exec genesys server start --config "$config" \
        --data-dir "${GENESYS_DATA_DIR:-/var/lib/genesys/coordinator}" "$@"
    ;;
agent)
    need_coordinator
    token="${GENESYS_TOKEN_FILE:-/run/secrets/worker_token}"
    need_file "worker token (GENESYS_TOKEN_FILE)" "$token"
    set -- --token-file "$token" "$@"
    need_ca
    if tls_on; then
        set -- --tls-ca "$GENESYS_CA_CERT" "$@"
    fi
    if [ -n "${GENESYS_LLM_ADDRESS:-}" ]; then  # designers search the gateway's shared index
        export GENESYS_KB_ADDRESS="${GENESYS_KB_ADDRESS:-$GENESYS_LLM_ADDRESS}"
        # the LLM designer's name for it (designer/llm/job.py)
        export GENESYS_KNOWLEDGE_ADDRESS="${GENESYS_KNOWLEDGE_ADDRESS:-$GENESYS_KB_ADDRESS}"
    fi
    unset GENESYS_TOKEN_FILE  # the agent reads the file itself; its children never see it
    exec genesys agent start --coordinator "$GENESYS_COORDINATOR" \
        --roles "${GENESYS_AGENT_ROLES:-verify,design}" --gpus "${GENESYS_AGENT_GPUS:-all}" \
        --work-dir "${GENESYS_WORK_DIR:-/var/lib/genesys/agents/$(hostname)}" \
        --data-dir "${GENESYS_DATA_DIR:-/var/lib/genesys/data}" --retry-forever "$@"
    ;;
gateway)
    config="${GENESYS_CONFIG_FILE:-/etc/genesys/gateway.toml}"
    need_file "gateway config (GENESYS_CONFIG_FILE)" "$config"
    need_server_tls
    if tls_on; then  # the gateway's config reads its TLS files from GENESYS_GATEWAY_TLS__*
        export GENESYS_GATEWAY_TLS__CERT="$GENESYS_TLS_CERT" GENESYS_GATEWAY_TLS__KEY="$GENESYS_TLS_KEY"
    fi
    exec genesys gateway start --config "$config" "$@"
    ;;
dashboard)
    need_coordinator
    need_file "dashboard token (GENESYS_TOKEN_FILE)" "${GENESYS_TOKEN_FILE:-}"
    need_ca
    exec genesys ui --coordinator "$GENESYS_COORDINATOR" \
        --listen "${GENESYS_UI_LISTEN:-0.0.0.0:8080}" "$@"
    ;;
token)
    # One-shot: create a token (NAME, ROLE) with the admin token and write it to OUT, once.
    out="${GENESYS_NEW_TOKEN_OUT:?GENESYS_NEW_TOKEN_OUT (where to write the token) is not set}"
    if [ -s "$out" ]; then
        echo "genesys-entrypoint: token already at $out"
        exit 0
    fi
    need_coordinator
    need_file "admin token (GENESYS_TOKEN_FILE)" "${GENESYS_TOKEN_FILE:-}"
    need_ca
    umask 077
    secret="$(genesys token create "${GENESYS_NEW_TOKEN_NAME:-agents}" \
        --role "${GENESYS_NEW_TOKEN_ROLE:-worker}")"
    printf '%s\n' "$secret" > "$out.tmp" && mv "$out.tmp" "$out"
    echo "genesys-entrypoint: ${GENESYS_NEW_TOKEN_ROLE:-worker} token written to $out"
    ;;
*)
    die "unknown role '$role' (coordinator | agent | gateway | dashboard | token)"
    ;;
esac

#!/bin/bash
# One Genesys agent on this Slurm node until GENESYS_DRAIN_MARGIN_S before the allocation
# ends, then a clean drain (SIGTERM: checkpoint, hand leases back, deliver the outbox).
# Started by genesys-agents.sbatch through srun; needs GENESYS_COORDINATOR and
# GENESYS_TOKEN_FILE (and GENESYS_CA_CERT for TLS). Extra arguments go to `genesys agent start`.
set -euo pipefail

log() { echo "genesys-slurm[${SLURMD_NODENAME:-$(hostname)}]: $*" >&2; }

: "${GENESYS_COORDINATOR:?set GENESYS_COORDINATOR to the coordinator address (host:port)}"
: "${GENESYS_TOKEN_FILE:?set GENESYS_TOKEN_FILE to a file holding a worker token}"
: "${SLURM_JOB_ID:?not inside a Slurm allocation (SLURM_JOB_ID is unset)}"
genesys="${GENESYS_BIN:-genesys}"
margin="${GENESYS_DRAIN_MARGIN_S:-600}"
node="${SLURMD_NODENAME:-$(hostname)}"

# When the allocation ends: Slurm's own value, else squeue's, else no planned drain.
end="${SLURM_JOB_END_TIME:-}"
if [ -z "$end" ] && command -v squeue >/dev/null; then
    end="$(date -d "$(squeue -h -j "$SLURM_JOB_ID" -o %e)" +%s 2>/dev/null || true)"
fi

work="${GENESYS_WORK_DIR:-${TMPDIR:-/tmp}/genesys-agent-$SLURM_JOB_ID-$node}"
data="${GENESYS_DATA_DIR:-$HOME/.cache/genesys/data}"
args=(agent start --coordinator "$GENESYS_COORDINATOR" --token-file "$GENESYS_TOKEN_FILE"
      --name "slurm-$SLURM_JOB_ID-$node" --work-dir "$work" --data-dir "$data"
      --gpus "${GENESYS_AGENT_GPUS:-all}" --roles "${GENESYS_AGENT_ROLES:-verify,design}"
      --drain-grace "${GENESYS_DRAIN_GRACE_S:-$(( margin > 60 ? margin - 60 : margin / 2 ))}")
[ -n "${GENESYS_CA_CERT:-}" ] && args+=(--tls-ca "$GENESYS_CA_CERT")

"$genesys" "${args[@]}" "$@" &
agent=$!
drain() {
    log "draining the agent ($1)"
    kill -TERM "$agent" 2>/dev/null || true
}
trap 'drain "signal from Slurm"' TERM INT

if [ -n "$end" ]; then
    stop_at=$(( end - margin ))
    log "agent $agent started; drains at $(date -d "@$stop_at" '+%F %T') ($margin s before the end)"
    ( now=$(date +%s); [ "$stop_at" -gt "$now" ] && sleep $(( stop_at - now )); kill -TERM $$ ) &
    timer=$!
else
    log "agent $agent started; allocation end unknown: drains on Slurm's SIGTERM only"
    timer=""
fi

status=0
while :; do
    wait "$agent" && status=0 || status=$?
    # wait returns early (> 128) when a trapped signal arrives; go on until the agent exits
    kill -0 "$agent" 2>/dev/null || break
done
[ -n "$timer" ] && kill "$timer" 2>/dev/null || true
log "agent exited with status $status"
exit "$status"

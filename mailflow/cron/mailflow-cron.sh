#!/bin/sh
# Run mailflow for one project, from cron or systemd: quiet when all is well, loud when not.
#
#   mailflow-cron.sh [PROJECT_DIR [VENV_DIR]]
#
# PROJECT_DIR  the folder holding mailflow.toml (default: $MAILFLOW_PROJECT)
# VENV_DIR     the virtualenv mailflow is installed in (default: $MAILFLOW_VENV, else the
#              `mailflow` found on PATH)
#
# Every run's output (a one-line summary, notes, errors) goes to PROJECT_DIR/.mailflow/cron.log
# with a timestamp; the log is rotated at about 1 MiB and 5 old logs are kept
# (MAILFLOW_LOG_MAX_BYTES, MAILFLOW_LOG_KEEP). When a run fails, its output is also printed on
# stderr and the exit status is mailflow's, so cron mails it to you (MAILTO) and systemd marks
# the unit failed. Exit 75 means another run still holds the project's lock: normal, quiet.
set -u
umask 077  # the log names clients and their addresses

project=${1:-${MAILFLOW_PROJECT:-}}
venv=${2:-${MAILFLOW_VENV:-}}
max_bytes=${MAILFLOW_LOG_MAX_BYTES:-1048576}
keep=${MAILFLOW_LOG_KEEP:-5}

die() {
    printf 'mailflow-cron: %s\n' "$*" >&2
    exit 2
}

[ -n "$project" ] || die "no project: pass its folder as the first argument or set MAILFLOW_PROJECT"
[ -f "$project/mailflow.toml" ] || die "$project: not a mailflow project (no mailflow.toml)"

if [ -n "$venv" ]; then
    exe=$venv/bin/mailflow
    [ -x "$exe" ] || die "$venv: no bin/mailflow in this virtualenv"
else
    exe=$(command -v mailflow) ||
        die "mailflow is not on PATH ($PATH); pass the virtualenv as the second argument or set MAILFLOW_VENV"
fi

log=$project/.mailflow/cron.log
mkdir -p "$project/.mailflow" || die "cannot create $project/.mailflow"

rotate() {
    [ -f "$log" ] || return 0
    size=$(wc -c <"$log")
    [ "$size" -ge "$max_bytes" ] || return 0
    rm -f "$log.$keep"
    i=$keep
    while [ "$i" -gt 1 ]; do
        prev=$((i - 1))
        if [ -f "$log.$prev" ]; then mv -f "$log.$prev" "$log.$i"; fi
        i=$prev
    done
    mv -f "$log" "$log.1"
}

out=$(mktemp "${TMPDIR:-/tmp}/mailflow-cron.XXXXXX") || die "cannot create a temporary file"
trap 'rm -f "$out"' EXIT
trap 'exit 130' HUP INT TERM

# -v: a one-line summary per run goes to the log (a heartbeat), never to cron's mail
"$exe" --project "$project" -v run >"$out" 2>&1
status=$?

rotate
stamp=$(date '+%Y-%m-%dT%H:%M:%S%z')
{
    sed "s|^|$stamp |" "$out"
    case $status in
        0 | 75) ;;
        *) printf '%s exit status %s\n' "$stamp" "$status" ;;
    esac
} >>"$log"

case $status in
    0 | 75) exit 0 ;;
    *)
        grep -v '^sent [0-9]*, drafted ' "$out" >&2
        exit "$status"
        ;;
esac

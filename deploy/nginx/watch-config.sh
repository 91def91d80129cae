#!/bin/sh
# The nginx side of the compose deployment (see README.md, "Compose"): runs nginx and applies the
# configuration the bgserve controller renders into the shared state volume.
#
#   controller: renders nginx.conf -> writes RENDERED atomically (temp + rename)
#   this loop:  sees RENDERED change -> `nginx -t` on a copy -> installs it as ACTIVE -> `nginx -s reload`
#   controller: polls /__bgserve/version until nginx answers the new generation
# Weight and mirror changes do not pass through here: they are live files nginx reads on every request.
#
# A rendered file that fails `nginx -t` is never installed: the previous ACTIVE keeps serving (and survives
# container restarts), and the controller reports the change as not in effect.
#
# Nothing here follows the instances' addresses: the configuration has nginx look mlservice_blue/mlservice_green
# up through Docker's DNS on requests (`resolver`), so a recreated container is followed with no reload (a reload
# closes idle keep-alive client connections, and a POST just written on one is lost).
# POSIX sh and busybox tools only, so it runs in the stock nginx:alpine image.
set -eu

RENDERED=${BGSERVE_NGINX_RENDERED:-/app/.bgserve/nginx/nginx.conf}
ACTIVE=${BGSERVE_NGINX_ACTIVE:-/etc/nginx/bgserve/nginx.conf}
SEED=${BGSERVE_NGINX_SEED:-/etc/nginx/bgserve-seed.conf}
INTERVAL=${BGSERVE_NGINX_POLL_SECONDS:-0.25}
# Extra arguments for every nginx call (tests run a private prefix: "-p DIR").
NGINX_ARGS=${BGSERVE_NGINX_ARGS:-}

log() { echo "bgserve-nginx: $*" >&2; }

# shellcheck disable=SC2086 # NGINX_ARGS is a list of words on purpose
nginx_cmd() { nginx $NGINX_ARGS "$@"; }

checksum() { if [ -f "$1" ]; then cksum < "$1"; else echo none; fi; }

# Tests $1 as a whole configuration, then installs it as ACTIVE. Returns 1 (and installs nothing) on failure.
install_checked() {
  cp "$1" "$ACTIVE.candidate"
  if output=$(nginx_cmd -t -q -c "$ACTIVE.candidate" 2>&1); then
    mv "$ACTIVE.candidate" "$ACTIVE"
    return 0
  fi
  rm -f "$ACTIVE.candidate"
  log "refused $1: $output"
  return 1
}

mkdir -p "$(dirname "$ACTIVE")"
# First configuration: the controller's last render if there is one and it passes, else the seed (100% blue).
if [ ! -f "$RENDERED" ] || ! install_checked "$RENDERED"; then
  [ -f "$ACTIVE" ] || cp "$SEED" "$ACTIVE"
fi

# Not through nginx_cmd: $! must be nginx itself, not a subshell (which would ignore QUIT).
# shellcheck disable=SC2086
nginx $NGINX_ARGS -c "$ACTIVE" -g 'daemon off;' &
nginx_pid=$!
# Graceful stop: QUIT lets in-flight requests finish (compose sends TERM on `down`/`stop`).
trap 'kill -QUIT "$nginx_pid" 2>/dev/null || true' TERM INT QUIT
log "nginx started (pid $nginx_pid), watching $RENDERED every ${INTERVAL}s"

seen=$(checksum "$RENDERED")
while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep "$INTERVAL"
  now=$(checksum "$RENDERED")
  [ "$now" = "$seen" ] && continue
  seen=$now
  [ -f "$RENDERED" ] || continue
  # Same text as the running configuration (e.g. the controller's first render of the seed): no reload,
  # which would close idle keep-alive connections for nothing.
  cmp -s "$RENDERED" "$ACTIVE" && continue
  if install_checked "$RENDERED"; then
    nginx_cmd -c "$ACTIVE" -s reload && log "applied $(head -n 1 "$ACTIVE")"
  fi
done
# nginx exited: report its status (0 after a graceful stop).
wait "$nginx_pid"

#!/bin/sh
# Blue-green release of a new image on the compose host, run by .github/workflows/deploy.yml over SSH from the
# directory holding the four compose files (README.md, "Compose").
#
#   IMAGE=ghcr.io/owner/repo:sha-... BUNDLE=models/wine-quality/1.0.0 sh scripts/deploy-bluegreen.sh
#   (DEPLOY_ARGS: more `bgserve deploy` options, e.g. "--analysis 60s --shadow 30s")
#
# 1. first run: bring the whole stack up on IMAGE (both colors), nothing to release against yet;
# 2. otherwise: ask the controller which color is live, recreate the idle one on IMAGE, wait for its health;
# 3. `bgserve deploy BUNDLE --wait` through the controller: the bundle is verified and loaded on the idle color,
#    smoke-tested through the preview route, analysed, switched, watched, and rolled back by the controller on
#    a failed check. The exit status is the release's: non-zero unless it ended promoted, which fails the job.
# 4. after a promotion the controller moves to IMAGE too; after a failure the idle color keeps IMAGE without
#    traffic (the next release replaces it) and the live color is untouched.
# Image choices persist in .env (BLUE_IMAGE, GREEN_IMAGE, BGSERVE_IMAGE), which Compose reads by itself.
set -eu

: "${IMAGE:?IMAGE (the image reference to release) is required}"
BUNDLE=${BUNDLE:-models/wine-quality/1.0.0}
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-120}
FILES="-f docker-compose.yaml -f docker-compose.nginx.yml -f docker-compose.blue.yml -f docker-compose.green.yml"

if docker compose version >/dev/null 2>&1; then
  compose() { docker compose $FILES "$@"; }
else
  compose() { docker-compose $FILES "$@"; }
fi
log() { echo "deploy-bluegreen: $*" >&2; }

# Sets KEY=VALUE in .env, keeping the other lines.
set_env() {
  touch .env
  grep -v "^$1=" .env > .env.next || true
  echo "$1=$2" >> .env.next
  mv .env.next .env
}

# Waits until a service's container reports healthy (its image HEALTHCHECK).
wait_healthy() {
  service=$1
  deadline=$(($(date +%s) + HEALTH_TIMEOUT_S))
  while :; do
    id=$(compose ps -q "$service")
    status=$( [ -n "$id" ] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || echo missing)
    [ "$status" = healthy ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$service is $status after ${HEALTH_TIMEOUT_S}s"
      compose logs --tail 50 "$service" >&2 || true
      return 1
    fi
    sleep 2
  done
}

bgserve() { compose exec -T controller bgserve "$@"; }

# deploy.yml releases immutable sha-<commit> tags: one already on the host (a rerun, or built there) is used
# as it is, without a registry round trip.
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "using $IMAGE (already on this host)"
else
  log "pulling $IMAGE"
  docker pull "$IMAGE"
fi

if [ -z "$(compose ps -q controller 2>/dev/null)" ]; then
  log "no running stack: starting it on $IMAGE"
  set_env BLUE_IMAGE "$IMAGE"
  set_env GREEN_IMAGE "$IMAGE"
  set_env BGSERVE_IMAGE "$IMAGE"
  compose up -d --no-build
  wait_healthy mlservice_blue
  wait_healthy mlservice_green
  wait_healthy controller
fi

# The live color, from the controller; a split (canary in progress) has no single live color: refuse.
# (Parsed with grep: the host needs Docker and a shell, nothing else.)
active=$(bgserve status --json | tr -d '\n' | grep -o -E '"active": *"(blue|green)"' | grep -o -E 'blue|green' || true)
case "$active" in
  blue) idle=green ;;
  green) idle=blue ;;
  *) log "no single live color (traffic is split): finish or roll back the running release first"; exit 1 ;;
esac
idle_upper=$(echo "$idle" | tr a-z A-Z)
log "live color: $active; putting $IMAGE on $idle"

set_env "${idle_upper}_IMAGE" "$IMAGE"
compose up -d --no-build --no-deps "mlservice_$idle"
wait_healthy "mlservice_$idle"

log "releasing $BUNDLE on $idle (blue-green, analysis, automatic rollback)"
# shellcheck disable=SC2086 # DEPLOY_ARGS is a list of options on purpose
if bgserve deploy "$BUNDLE" --strategy bluegreen --wait ${DEPLOY_ARGS:-}; then
  log "promoted: $idle serves $BUNDLE on $IMAGE"
  set_env BGSERVE_IMAGE "$IMAGE"
  compose up -d --no-build --no-deps controller
  wait_healthy controller
else
  status=$?
  log "release did not end promoted (exit $status): traffic stays on $active"
  bgserve status >&2 || true
  exit "$status"
fi

#!/usr/bin/env bash
# One command: install packages, build, start faasd on 127.0.0.1:8080 (control API on :9090)
# with the example functions deployed, on the embedded store (no external services).
# Ctrl-C stops it. Data lives in ./faas-data.
# FAAS_RUN_SMOKE=1: start on free ports with a throwaway data dir, check that the examples answer,
# stop, and exit (CI runs it before ./test.sh, as a new user would run the two).
set -euo pipefail
cd "$(dirname "$0")"
./infra/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)"

HTTP=${FAAS_HTTP:-127.0.0.1:8080}
GRPC=${FAAS_GRPC:-127.0.0.1:9090}
DATA=${FAAS_DATA_DIR:-./faas-data}
SMOKE=${FAAS_RUN_SMOKE:-}
if [[ -n "$SMOKE" ]]; then
  # A relative data dir, as a new user's ./faas-data: paths must not depend on the cwd.
  HTTP=127.0.0.1:0 GRPC=127.0.0.1:0 DATA=./build/faas-run-smoke
  rm -rf "$DATA"
fi
READY=$(mktemp -u /tmp/faasd-ready.XXXXXX)
build/bin/faasd --http "$HTTP" --grpc "$GRPC" --data-dir "$DATA" --ready-file "$READY" &
FAASD=$!
# faasd stops with this script however it ends: Ctrl-C, or a failed step below (set -e).
stop() { kill -TERM $FAASD 2>/dev/null || true; wait $FAASD 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 300); do
  [[ -s "$READY" ]] && break
  kill -0 $FAASD 2>/dev/null || { echo "faasd failed to start" >&2; exit 1; }
  sleep 0.1
done
# The addresses it bound (port 0 picks a free one).
HTTP=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['http'])" "$READY")
GRPC=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['grpc'])" "$READY")
export FAAS_SERVER=$GRPC
# The control API needs the admin token faasd keeps in its data dir.
FAAS_TOKEN=$(cat "$DATA/admin-token")
export FAAS_TOKEN
# hello is public (no API key); the others need one.
build/bin/faasctl deploy hello build/functions/libhello.so --timeout 10s --public
for fn in echo sleep burn crash fail; do
  build/bin/faasctl deploy "$fn" "build/functions/lib$fn.so" --timeout 10s
done
if [[ -n "$SMOKE" ]]; then
  fail() { echo "run.sh smoke check: $1" >&2; kill -TERM $FAASD; wait $FAASD; exit 1; }
  [[ $(curl -s "http://$HTTP/function/hello") == "Hello from faas!" ]] || fail "hello did not answer"
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/function/echo") == 401 ]] ||
    fail "echo answered without a key"
  curl -sf "http://$HTTP/healthz" >/dev/null || fail "/healthz"
  [[ $(curl -s -o /dev/null -w '%{redirect_url}' "http://$HTTP/console/") == "http://$HTTP/console/signin" ]] ||
    fail "the console did not ask to sign in"
  kill -TERM $FAASD
  wait $FAASD || fail "faasd did not stop cleanly"
  rm -rf "$DATA"
  echo "run.sh smoke check: ok (hello answered, echo asked for a key, /healthz ok, console asks to sign in, clean stop)"
  exit 0
fi
cat <<MSG

faasd is running (pid $FAASD): HTTP on http://$HTTP, control API on $GRPC, data in $DATA.
Console: http://$HTTP/console/  (sign in with the admin token: cat $DATA/admin-token)
In another terminal:
  export FAAS_SERVER=$GRPC FAAS_TOKEN=\$(cat $DATA/admin-token)
  curl -s http://$HTTP/function/hello                       # public: no key needed
  KEY=\$(build/bin/faasctl key create --tenant demo -o json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
  curl -s -H "Authorization: Bearer \$KEY" -X POST --data '{"x":1}' 'http://$HTTP/function/echo/some/path?q=1'
  curl -s -H "Authorization: Bearer \$KEY" -X POST --data 'later' http://$HTTP/async-function/echo
  build/bin/faasctl list
  build/bin/faasctl invoke echo --data '{"x":1}' -v
Ctrl-C stops faasd (in-flight invocations finish first).
MSG
wait $FAASD

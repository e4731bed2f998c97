#!/usr/bin/env bash
# A/B for isolation changes: hello's p99 next to one hostile mode, for two faasd variants
# alternated round by round (single runs of these attacks swing several-fold on a shared VM, so
# only alternated rounds compare). A variant is "bin-dir[:faasd flags]"; copy a build's bin/
# aside to compare builds, or give one bin/ two sets of flags.
#     bench/e2e/isolation_ab.sh MODE ROUNDS A B
#     bench/e2e/isolation_ab.sh fork-bomb 5 /tmp/old-bin build/bin
#     bench/e2e/isolation_ab.sh fork-bomb 5 build/bin:--function-cpus=0 build/bin
# MODE: fork-bomb | balloon | busy-threads. Each run: a fresh faasd, hello alone for 6 s, then
# with the attack (wrk -t1 -c4) for 6 s, both at RATE=1000 req/s open loop (faas_paced_load).
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -eq 4 ]] || { sed -n 2,10p "$0" >&2; exit 2; }
MODE=$1 ROUNDS=$2
VARIANTS=("$3" "$4")
RATE=${RATE:-1000}
HOSTILE=build/tests/testdata/libhostile.so
[[ -f $HOSTILE ]] || { echo "build the tests first (ninja -C build testdata_hostile)" >&2; exit 1; }
command -v wrk >/dev/null || ./infra/install-deps.sh --bench

one_run() {  # variant -> "alone_p99 with_p99" in ms
  local bin=${1%%:*} flags=""
  [[ $1 == *:* ]] && flags=${1#*:}
  FAASD_BIN=$bin FLAGS=$flags MODE=$MODE RATE=$RATE HOSTILE=$HOSTILE bash -c '
    set -euo pipefail
    source bench/e2e/lib.sh
    # shellcheck disable=SC2086
    LOG_LEVEL=error start_faasd $FLAGS
    build/bin/faasctl deploy hello build/functions/libhello.so --public --max-instances 16 >/dev/null
    build/bin/faasctl deploy hostile "$HOSTILE" --public --timeout 1s --memory 64 \
      --max-instances 4 --queue-timeout 100ms >/dev/null
    wait_for_zygote hello hostile
    wrk -t1 -c8 -d2s "http://$HTTP/function/hello" >/dev/null
    p99() {
      build/bench/faas_paced_load --addr "$HTTP" --path /function/hello --rate "$RATE" -c 8 -d 6 |
        tr " " "\n" | awk -F= "\$1==\"p99\" {print \$2}"
    }
    alone=$(p99)
    wrk -t1 -c4 -d7s "http://$HTTP/function/hostile?do=$MODE" >/dev/null 2>&1 &
    h=$!
    sleep 0.5
    with=$(p99)
    wait $h || true
    echo "$alone $with"'
}

declare -A WITH
for r in $(seq 1 "$ROUNDS"); do
  for v in 0 1; do
    read -r alone with < <(one_run "${VARIANTS[$v]}")
    WITH[$v]+="$with "
    printf 'round %d  %-40s hello p99 alone %7.3f ms, next to %s %7.3f ms (%.2fx alone)\n' \
      "$r" "${VARIANTS[$v]}" "$alone" "$MODE" "$with" "$(awk -v a="$alone" -v w="$with" 'BEGIN {print w / a}')"
  done
done
for v in 0 1; do
  python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[2:]];
print(f'{sys.argv[1]:40s} median p99 next to $MODE: {statistics.median(v):.2f} ms over {len(v)} rounds')" \
    "${VARIANTS[$v]}" ${WITH[$v]}
done
# How the two variants compare: the ratio of their median p99s next to the attack.
python3 -c "import statistics,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()];
print(f'median p99 next to $MODE, A / B: {statistics.median(a) / statistics.median(b):.2f}x')" \
  "${WITH[0]}" "${WITH[1]}"

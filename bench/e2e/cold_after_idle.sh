#!/usr/bin/env bash
# The cold start users meet: hello deployed with --idle-ttl 1s; each round waits until its
# instance scaled to zero (2.5 s), then times one HTTP call (curl; and Server-Timing's cold), and
# after the same pause one bare fork+exit+wait of a small separate C process (DESIGN §5).
#   bench/e2e/cold_after_idle.sh [ROUNDS=15]     FAASD_BIN=/other/build/bin for another build
# Prints one line per round: http_ms cold_flag server_cold_ms fork_ms, then the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-15}
source bench/e2e/lib.sh
start_faasd
build/bin/faasctl deploy hello build/functions/libhello.so --public --idle-ttl 1s >/dev/null
wait_for_zygote hello
cat > $WORK/fork.c <<'C'
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void){struct timespec a,b;clock_gettime(CLOCK_MONOTONIC,&a);pid_t p=fork();if(p==0)_exit(0);waitpid(p,0,0);clock_gettime(CLOCK_MONOTONIC,&b);printf("%.3f\n",(b.tv_sec-a.tv_sec)*1e3+(b.tv_nsec-a.tv_nsec)/1e6);return 0;}
C
cc -O2 -o $WORK/fork $WORK/fork.c
curl -s -o /dev/null "http://$HTTP/function/hello"
for i in $(seq $N); do
  sleep 2.5
  t=$(curl -s -o /dev/null -D $WORK/h -w '%{time_total}' "http://$HTTP/function/hello")
  cold=$(grep -i '^x-faas-cold-start' $WORK/h | tr -d '\r' | awk '{print $2}')
  st=$(grep -i '^server-timing' $WORK/h | tr -d '\r' | sed 's/.*cold;dur=\([0-9.]*\).*/\1/')
  sleep 2.5
  f=$($WORK/fork)
  echo "$(awk "BEGIN{print $t*1000}") $cold $st $f"
done | tee "$WORK/rounds.txt"
python3 - "$WORK/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 4]
med = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"median of {len(rows)}: http {med(0):.2f} ms, server cold {med(2):.2f} ms, bare fork {med(3):.3f} ms")
PY

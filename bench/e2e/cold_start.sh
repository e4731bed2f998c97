#!/usr/bin/env bash
# Cold starts of `hello`, each next to a bare fork of a small separate process measured under the
# same conditions, in one run (issue #14; docs/benchmarks.md):
#   1. forced: `isolation fresh` in a tight loop (build/bench/faas_coldstart_bench, bench/e2e/
#      cold_start.cc), a warm call and a bare fork back to back in every round;
#   2. after scale-to-zero: --idle-ttl 1s, poll until its instance is gone, pause, call; a warm
#      call, a bare fork and a cgroup move each after the same pause (bench/e2e/cold_paths.py);
#   3. right after a deploy: deploy a new version, call at once; a bare fork after a deploy.
# Each part prints (cold - warm) / bare fork: the targets are <= 2x forced, <= 3x after idle.
#   bench/e2e/cold_start.sh [N=200 forced rounds] [ROUNDS=10 idle and deploy rounds]
#   PAUSE=2.5 (seconds), FAASD_FLAGS="--zygotes=false" (every instance spawned),
#   FAASD_FLAGS="--park-instances=false" (every cold start forks on the request path instead of
#   taking the zygote's parked instance; docs/design/0010, "Parked instances"),
#   FAASD_FLAGS="--parked-fresh=1" (hello-fresh keeps one parked instance instead of two),
#   FAASD_BIN=/other/build/bin (another build's faasd)
# Note the kernel: with cgroup favordynmods on (docs/design/0010) a move does not wait after a
# pause, which flatters the after-idle figure against a host without it; the per-round move
# figure (part 2's move_ms) tells which case a run was taken in.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
ROUNDS=${2:-10}
source bench/e2e/lib.sh
start_faasd ${FAASD_FLAGS:-}
echo "load before: $(uptime)"
build/bin/faasctl deploy hello build/functions/libhello.so --public >/dev/null
# Every HTTP request to hello-fresh is a forced cold start (a new instance, discarded after).
build/bin/faasctl deploy hello-fresh build/functions/libhello.so --public --isolation fresh >/dev/null
build/bin/faasctl deploy hello-idle build/functions/libhello.so --public --idle-ttl 1s >/dev/null
wait_for_zygote hello hello-fresh hello-idle
curl -s -o /dev/null "http://$HTTP/function/hello"  # one instance of hello stays warm

if (( N > 0 )); then
  echo "== forced cold start: $N rounds back to back =="
  build/bench/faas_coldstart_bench --server "$FAAS_SERVER" --function hello -n "$N" \
    --http "$HTTP" --http-function hello-fresh --http-warm-function hello
fi

# fork, move the child into the cgroup whose cgroup.procs is $1, kill and reap it: ms of the move.
cat > $WORK/move.c <<'C'
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int c,char**v){struct timespec a,b;pid_t p=fork();if(p==0){pause();_exit(0);}
clock_gettime(CLOCK_MONOTONIC,&a);int fd=open(v[1],O_WRONLY);if(fd<0||dprintf(fd,"%d",p)<0)return 1;close(fd);
clock_gettime(CLOCK_MONOTONIC,&b);kill(p,SIGKILL);waitpid(p,0,0);
printf("%.3f\n",(b.tv_sec-a.tv_sec)*1e3+(b.tv_nsec-a.tv_nsec)/1e6);return 0;}
C
cc -O2 -o $WORK/move $WORK/move.c
if [[ -d /sys/fs/cgroup/pids ]]; then CG=/sys/fs/cgroup/pids/faas-bench-move-$$; else CG=/sys/fs/cgroup/faas-bench-move-$$; fi
mkdir "$CG"
remove_cg() { rmdir "$CG" 2>/dev/null || true; cleanup; }
trap remove_cg EXIT

python3 bench/e2e/cold_paths.py --http "$HTTP" --rounds "$ROUNDS" --pause "${PAUSE:-2.5}" \
  --faasctl build/bin/faasctl --fork build/bin/faas-fork-baseline --move $WORK/move \
  --cgroup "$CG/cgroup.procs" --lib build/functions/libhello.so
echo "load after: $(uptime)"

#!/usr/bin/env bash
# The cold start users meet: hello deployed with --idle-ttl 1s; each round waits until its
# instance scaled to zero (2.5 s), then times one HTTP call (curl; and Server-Timing's cold), and
# after the same pause two baselines from a small separate C process: one bare fork+exit+wait, and
# one fork whose child is moved into a cgroup (a pids cgroup this script makes and removes), the
# step every instance takes. After an idle pause that move waits for an RCU grace period unless
# the kernel favours dynamic cgroup changes (docs/design/0010-cold-start-after-idle.md).
#   bench/e2e/cold_after_idle.sh [ROUNDS=15]     FAASD_BIN=/other/build/bin for another build
# Prints one line per round: http_ms cold_flag server_cold_ms fork_ms fork_move_ms, then medians.
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
curl -s -o /dev/null "http://$HTTP/function/hello"
for i in $(seq $N); do
  sleep 2.5
  t=$(curl -s -o /dev/null -D $WORK/h -w '%{time_total}' "http://$HTTP/function/hello")
  cold=$(grep -i '^x-faas-cold-start' $WORK/h | tr -d '\r' | awk '{print $2}')
  st=$(grep -i '^server-timing' $WORK/h | tr -d '\r' | sed 's/.*cold;dur=\([0-9.]*\).*/\1/')
  sleep 2.5
  f=$($WORK/fork)
  sleep 2.5
  m=$($WORK/move "$CG/cgroup.procs")
  echo "$(awk "BEGIN{print $t*1000}") $cold $st $f $m"
done | tee "$WORK/rounds.txt"
python3 - "$WORK/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 5]
med = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"median of {len(rows)}: http {med(0):.2f} ms, server cold {med(2):.2f} ms, "
      f"bare fork {med(3):.3f} ms, cgroup move of a forked child {med(4):.3f} ms (each after the same pause)")
PY

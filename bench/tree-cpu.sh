#!/bin/sh
# tree-cpu.sh PID: prints "T<ns> C<seconds>": the wall clock, then the CPU time (user + system) the process PID and
# every process under it have used so far, including children they have already reaped (cutime/cstime in
# /proc/PID/stat), so the session processes of a forking server count after they exit. Threads (ftpsd's digest
# worker) are part of their process's own times. Called between the steps of a client script (lftp `!`, ftplib) and
# by the driver around a step, so that one reading costs a few milliseconds of a shell, not a Node start.
set -eu
all=$1
level=$1
while [ -n "$level" ]; do
  next=''
  for p in $level; do
    next="$next $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
  done
  level=$(echo $next)
  all="$all $level"
done
now=$(date +%s%N)
ticks=$(for p in $all; do cat /proc/"$p"/stat 2>/dev/null || true; done |
  awk '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { printf "%d", t }')
hz=$(getconf CLK_TCK)
echo "T$now C$(awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.3f", t / hz }')"

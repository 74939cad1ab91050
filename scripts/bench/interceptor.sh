#!/usr/bin/env bash
# The interceptor's benchmark (docs/architecture.md, "Benchmarks"): each figure is a ratio of medians, measured side
# by side in one run, the variants interleaved round by round so that a busy machine slows all alike.
#   (a) 2 000 000 getppid calls, which the seccomp filter never stops: intercepted / native, beside
#       a one-instruction allow-all seccomp filter / native (the kernel's price for any filter) and
#       the same loop under syscall user dispatch, a per-task hook without seccomp (the price of the
#       kernel's slow syscall path, which any per-task hook switches on)
#   (b) 100 000 opens of a /proc/sys file, 9 getppid after each: intercepted / native, / strace, / proot;
#       once for a redirected file (vm/panic_on_oom: two stops, the second gives the tracee back its
#       registers) and once for one that is only inspected (kernel/ostype: one stop)
#       beside a bare tracer that resumes each stop at once (the floor of a stop's cost here), and
#       for the redirected file the same bare tracer taking the second stop too (the floor with it)
#   (c) the Go tracee of the tests, a fixed amount of work: intercepted / native
# (a) and (b) use the loop's own time (without process start-up: hybrid's node takes ~0.3 s to start);
# (c) uses wall time. Usage: scripts/bench/interceptor.sh [ROUNDS] (default 3; proot makes (b) slow).
set -euo pipefail

ROUNDS=${1:-3}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FIXTURES=$REPO/test/native/fixtures
[ -f "$REPO/native/build/Release/hybrid_interceptor.node" ] && [ -x "$REPO/native/build/Release/hybrid_tracer" ] &&
  [ -f "$REPO/dist/src/commands/intercept.js" ] ||
  { echo "build hybrid first: npm run build" >&2; exit 1; }
for tool in cc go strace proot; do command -v $tool >/dev/null || { echo "$tool is needed (apt-get install gcc golang-go strace proot)" >&2; exit 1; }; done

WORK=$(mktemp -d /tmp/hybrid-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/syscall-loop" "$FIXTURES/syscall-loop.c"
cc -O2 -o "$WORK/seccomp-allow-all" "$REPO/scripts/bench/seccomp-allow-all.c"
cc -O2 -o "$WORK/bare-tracer" "$REPO/scripts/bench/bare-tracer.c"
cc -O2 -o "$WORK/dispatch-loop" "$REPO/scripts/bench/dispatch-loop.c"
GOCACHE=$WORK/gocache GOPATH=$WORK/gopath GO111MODULE=off CGO_ENABLED=0 go build -o "$WORK/go-tracee" "$FIXTURES/go-tracee/main.go"

HYBRID=(node "$REPO/bin/run.js" intercept --)
STRACE=(strace -f --seccomp-bpf -e trace=openat -o /dev/null)
export SYSCALL_LOOP_TIMING=1

# run NAME CMD…: append the loop's own seconds (or, without one, the wall seconds) to $WORK/NAME.
run() {
  local name=$1; shift
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>"$WORK/stderr" || { echo "$name failed:" >&2; cat "$WORK/stderr" >&2; exit 1; }
  local wall; wall=$(echo "$EPOCHREALTIME $start" | awk '{printf "%.6f", $1 - $2}')
  local loop; loop=$(awk '/^loop-seconds /{print $2}' "$WORK/stderr")
  echo "${loop:-$wall}" >>"$WORK/$name"
}

median() { sort -n "$WORK/$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
minimum() { sort -n "$WORK/$1" | head -1; }
# The ratio of medians, and of minima: on a shared machine the fastest run is the least disturbed one.
ratio() {
  awk -v a="$(median "$1")" -v b="$(median "$2")" -v c="$(minimum "$1")" -v d="$(minimum "$2")" \
    'BEGIN {printf "%.2f (of minima %.2f)", a / b, c / d}'
}
secs() { printf '%.3f s' "$(median "$1")"; }

GETPPID=("$WORK/syscall-loop" getppid 2000000)
OPEN_REDIRECTED=("$WORK/syscall-loop" open 100000 /proc/sys/vm/panic_on_oom 9)
OPEN_INSPECTED=("$WORK/syscall-loop" open 100000 /proc/sys/kernel/ostype 9)
GO=("$WORK/go-tracee" -rounds 300 -spin 2000000 -check=false -exec-from-thread=false)

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS…" >&2
  for _ in 1 2 3; do  # short runs: more of them
    run a-native "${GETPPID[@]}"
    run a-hybrid "${HYBRID[@]}" "${GETPPID[@]}"
    run a-filter "$WORK/seccomp-allow-all" "${GETPPID[@]}"
    run a-dispatch "$WORK/dispatch-loop" 2000000
  done
  for kind in redirected inspected; do
    if [ $kind = redirected ]; then cmd=("${OPEN_REDIRECTED[@]}"); else cmd=("${OPEN_INSPECTED[@]}"); fi
    run b-$kind-native "${cmd[@]}"
    run b-$kind-hybrid "${HYBRID[@]}" "${cmd[@]}"
    run b-$kind-strace "${STRACE[@]}" "${cmd[@]}"
    run b-$kind-proot proot "${cmd[@]}"
    run b-$kind-bare "$WORK/bare-tracer" "${cmd[@]}"
    if [ $kind = redirected ]; then run b-$kind-bare2 env BARE_TRACER_EXIT_STOP=1 "$WORK/bare-tracer" "${cmd[@]}"; fi
  done
  run c-native "${GO[@]}"
  run c-hybrid "${HYBRID[@]}" "${GO[@]}"
done

echo "interceptor benchmark: medians of $ROUNDS rounds ((a): 3 runs a round); $(uname -sr), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(a) 2 000 000 getppid, never stopped:  native $(secs a-native)  hybrid $(secs a-hybrid)"
echo "    hybrid / native            $(ratio a-hybrid a-native)   (target ≤ 1.05)"
echo "    allow-all filter / native  $(ratio a-filter a-native)   (the same loop under a one-instruction seccomp filter, no tracer)"
echo "    user dispatch / native     $(ratio a-dispatch a-native)   (the same loop under syscall user dispatch: no seccomp, no tracer)"
for kind in redirected inspected; do
  if [ $kind = redirected ]; then what="/proc/sys/vm/panic_on_oom, redirected"; else what="/proc/sys/kernel/ostype, inspected only"; fi
  echo "(b) 100 000 opens of $what, + 9 getppid each:"
  echo "    native $(secs b-$kind-native)  hybrid $(secs b-$kind-hybrid)  strace $(secs b-$kind-strace)  proot $(secs b-$kind-proot)"
  echo "    hybrid / native            $(ratio b-$kind-hybrid b-$kind-native)"
  echo "    hybrid / strace            $(ratio b-$kind-hybrid b-$kind-strace)   (target ≤ 0.5)"
  echo "    hybrid / proot             $(ratio b-$kind-hybrid b-$kind-proot)"
  echo "    bare tracer / strace       $(ratio b-$kind-bare b-$kind-strace)   (one stop per open, resumed at once: the floor here)"
  if [ $kind = redirected ]; then
    echo "    bare, 2 stops / strace     $(ratio b-$kind-bare2 b-$kind-strace)   (a stop at entry and one at return, both resumed at once: the floor with the register restore)"
  fi
done
echo "(c) Go tracee, 16 readers × 300 rounds, writers, 300 execs, spinners (wall time, hybrid's start included):"
echo "    native $(secs c-native)  hybrid $(secs c-hybrid)"
echo "    hybrid / native            $(ratio c-hybrid c-native)"

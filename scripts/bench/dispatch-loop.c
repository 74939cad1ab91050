// Benchmark baseline: the getppid loop of (a) with Linux's syscall user dispatch switched on and every
// call allowed by its selector. It is a per-task syscall hook that has nothing to do with seccomp: if it
// costs what the one-instruction seccomp filter costs, the price is the kernel's slow syscall path
// itself (taken whenever any per-task hook is set), not seccomp's. Dispatch ends at exec, so the loop
// lives here rather than in the tracee. Usage: dispatch-loop N; prints "loop-seconds S" on stderr.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif

static volatile char selector = 0;  // SYSCALL_DISPATCH_FILTER_ALLOW: every call goes to the kernel

int main(int argc, char **argv) {
  const long n = argc > 1 ? atol(argv[1]) : 2000000;
  if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector) != 0) {
    perror("syscall user dispatch");
    return 1;
  }
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
  clock_gettime(CLOCK_MONOTONIC, &end);
  fprintf(stderr, "loop-seconds %.6f\n", (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
  return 0;
}

// Benchmark baseline: the least a seccomp-based ptrace interceptor can do. Runs argv[1…] with a
// filter that stops it on openat and resumes each stop at once with PTRACE_CONT: no registers read,
// no path read, nothing redirected. Its time is the floor of the stop cost on this machine.
// With BARE_TRACER_EXIT_STOP set, each seccomp stop is resumed with PTRACE_SYSCALL, so the call stops
// once more when it returns (resumed at once too): the floor of a redirect that gives the tracee its
// registers back, which takes that second stop.
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int go[2];
  if (pipe(go) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    char byte;
    close(go[1]);
    if (read(go[0], &byte, 1) != 1) _exit(127);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog) != 0) _exit(126);
    execv(argv[1], argv + 1);
    _exit(127);
  }
  if (ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
    perror("ptrace");
    return 1;
  }
  if (write(go[1], "x", 1) != 1) return 1;
  const int after_seccomp = getenv("BARE_TRACER_EXIT_STOP") != NULL ? PTRACE_SYSCALL : PTRACE_CONT;
  int status;
  pid_t tid;
  while ((tid = waitpid(-1, &status, __WALL)) > 0) {
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (tid == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      continue;
    }
    const int event = status >> 16;
    if (event == PTRACE_EVENT_SECCOMP) ptrace(after_seccomp, tid, 0, 0);
    else ptrace(PTRACE_CONT, tid, 0, event != 0 || WSTOPSIG(status) == (SIGTRAP | 0x80) ? 0 : WSTOPSIG(status));
  }
  return 1;
}

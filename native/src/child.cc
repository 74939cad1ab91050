#include "child.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace interceptor {
namespace {

[[noreturn]] void Fail(const ChildPlan& plan, ChildStage stage) {
  ChildReport report{static_cast<int32_t>(stage), errno};
  ssize_t ignored = write(plan.report_fd, &report, sizeof report);
  (void)ignored;
  _exit(127);
}

// The tracer ignores terminal signals and SIGPIPE; an ignored disposition survives exec, so
// reset every one, as libuv does for child_process.spawn.
void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // fails harmlessly for the C library's reserved signals
  }
}

bool PlaceStdio(const ChildPlan& plan) {
  // Move the sources out of the way first, so that e.g. stdio = {1, 0, 2} works.
  int moved[3];
  for (int i = 0; i < 3; i++) {
    moved[i] = fcntl(plan.stdio[i], F_DUPFD_CLOEXEC, 3);
    if (moved[i] < 0) return false;
  }
  for (int i = 0; i < 3; i++) {
    if (dup2(moved[i], i) < 0) return false;  // dup2 clears close-on-exec on the new number
  }
  return true;
}

bool PlaceTargetDirs(const ChildPlan& plan) {
  for (int i = 0; i < plan.dir_count; i++) {
    if (dup2(plan.dir_fds[i], plan.dir_targets[i]) < 0) return false;
  }
  return true;
}

long Seccomp(const ChildPlan& plan) {
  // The filter is for interception, not a security boundary: do not let it switch on the Speculative
  // Store Bypass mitigation, which slows down everything the command does. Older kernels and gVisor
  // do not know the flag.
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, plan.filter) == 0) return 0;
  if (errno != EINVAL) return -1;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, plan.filter);
}

bool InstallFilter(const ChildPlan& plan) {
  if (Seccomp(plan) == 0) return true;
  // Without CAP_SYS_ADMIN the kernel requires no_new_privs first. Root keeps setuid semantics.
  if (errno != EACCES) return false;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return Seccomp(plan) == 0;
}

}  // namespace

void RunChild(const ChildPlan& plan) {
  close(plan.close_fds[0]);
  close(plan.close_fds[1]);
  char go;
  ssize_t n;
  do n = read(plan.go_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(127);  // the tracer gave up (it could not seize us)
  close(plan.go_fd);

  ResetSignals();
  if (!PlaceStdio(plan)) Fail(plan, ChildStage::kStdio);
  if (!PlaceTargetDirs(plan)) Fail(plan, ChildStage::kDescriptors);
  if (plan.cwd != nullptr && chdir(plan.cwd) != 0) Fail(plan, ChildStage::kCwd);
  if (!InstallFilter(plan)) Fail(plan, ChildStage::kSeccomp);
  execve(plan.file, plan.argv, plan.envp);
  Fail(plan, ChildStage::kExec);
}

}  // namespace interceptor

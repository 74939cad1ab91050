// The tracer loop: every stop of every tracee, and the redirect itself.
#include "session.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>

#include "child.h"
#include "syscall_table.h"

namespace interceptor {
namespace {

// In `missing` mode a path is redirected only when it really does not exist, as the calling process
// sees it: through its own root, in its own mount namespace (a container's, say), not the tracer's.
bool RealPathExists(pid_t tid, const char* path) {
  char in_root[PATH_MAX + 32];
  if (snprintf(in_root, sizeof in_root, "/proc/%d/root%s", tid, path) >= static_cast<int>(sizeof in_root)) return true;
  struct stat st;
  if (stat(in_root, &st) == 0) return true;
  return errno != ENOENT && errno != ENOTDIR;
}

bool IsStopSignal(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

}  // namespace

// HYBRID_INTERCEPTOR_NO_SYSCALL_INFO=1 makes the tracer do without PTRACE_GET_SYSCALL_INFO, as it must
// inside gVisor and on Linux before 5.3: the tests use it to take that path on any kernel.
Session::Session(SpawnSpec spec, Callbacks callbacks, CounterBlock counters)
    : spec_(std::move(spec)),
      callbacks_(std::move(callbacks)),
      rules_(spec_.rules),
      syscall_info_ok_(getenv("HYBRID_INTERCEPTOR_NO_SYSCALL_INFO") == nullptr),
      counters_(counters) {}

Session::~Session() {
  for (int fd : tracer_fds_) close(fd);
  for (auto& [pid, fd] : pidfds_) close(fd);
  if (report_fd_ >= 0) close(report_fd_);
}

// Drain every ready event before serving any: the kernel reports the newest tracees first, so taking
// one event per wait would let a few busy young tracees starve an older one (k3s behind its own
// containerd, shims and runc). Each tracee has at most one event in a batch, so all are served in turn.
void Session::Loop() {
  std::vector<std::pair<pid_t, int>> batch;
  for (;;) {
    batch.clear();
    int status;
    pid_t tid = waitpid(-1, &status, __WALL | __WNOTHREAD);  // the tracer thread's tracees
    if (tid < 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: nothing traced is left
    }
    batch.emplace_back(tid, status);
    // With one tracee there is nobody to be fair to: spare the extra wait (the benchmark's case).
    while (alive_.size() > 1 && (tid = waitpid(-1, &status, __WALL | __WNOTHREAD | WNOHANG)) > 0) {
      batch.emplace_back(tid, status);
    }
    for (const auto& [t, st] : batch) Serve(t, st);
  }
}

void Session::Serve(pid_t tid, int status) {
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    OnGone(tid, status);
    return;
  }
  if (!WIFSTOPPED(status)) return;
  counters_.stops().Bump();
  if (alive_.count(tid) == 0) AddTracee(tid);  // a new thread or process's first stop
  const int sig = WSTOPSIG(status);
  const int event = status >> 16;
  if (event == PTRACE_EVENT_SECCOMP) {
    OnSeccomp(tid);
  } else if (sig == (SIGTRAP | 0x80)) {
    OnSyscallStop(tid);
  } else if (event == PTRACE_EVENT_EXEC) {
    OnExec(tid);
  } else if (event == PTRACE_EVENT_STOP) {
    // A group-stop stays a stop until SIGCONT (PTRACE_LISTEN); any other event-stop just resumes.
    if (IsStopSignal(sig)) ptrace(PTRACE_LISTEN, tid, nullptr, nullptr);
    else Resume(tid, 0);
  } else if (event != 0) {
    Resume(tid, 0);  // fork, vfork, clone: the new tracee reports its own first stop
  } else {
    counters_.signals().Bump();  // a signal on its way to the tracee (Go's SIGURG among them): deliver it
    Resume(tid, sig);
  }
}

void Session::Resume(pid_t tid, int sig) {
  const bool mid_redirect = !pending_.empty() && pending_.count(tid) != 0;
  ptrace(mid_redirect ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
}

// alive_ changes only here, under the lock: a tid in it is not reaped yet, so KillAll never signals a
// reused pid.
void Session::AddTracee(pid_t tid) {
  // Only a process's leader has a pidfd (EINVAL for other threads); the leader is reaped last.
  const int pidfd = pidfd_ok_ ? static_cast<int>(syscall(SYS_pidfd_open, tid, 0)) : -1;
  if (pidfd < 0 && errno == ENOSYS) pidfd_ok_ = false;
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  std::lock_guard<std::mutex> lock(alive_mutex_);
  alive_.insert(tid);
  if (pidfd >= 0) pidfds_.emplace(tid, pidfd);
  counters_.tracees().Set(alive_.size());
}

void Session::ForgetTracee(pid_t tid) {
  {
    std::lock_guard<std::mutex> lock(alive_mutex_);
    alive_.erase(tid);
    auto it = pidfds_.find(tid);
    if (it != pidfds_.end()) {
      close(it->second);
      pidfds_.erase(it);
    }
    counters_.tracees().Set(alive_.size());
  }
  pending_.erase(tid);
  access_.Forget(tid);
}

void Session::OnGone(pid_t tid, int status) {
  ForgetTracee(tid);
  if (tid != pid_) return;
  reaped_.store(true);
  if (starting_) {
    // It never reached exec: the child says why over the report pipe.
    ChildReport report{};
    StartError error{"exec", 0, ""};
    if (read(report_fd_, &report, sizeof report) == static_cast<ssize_t>(sizeof report)) {
      static const char* const kStages[] = {"", "cwd", "seccomp", "exec", "descriptors", "stdio"};
      if (report.stage >= 1 && report.stage <= 5) error.stage = kStages[report.stage];
      error.error = report.error;
    }
    Finish(std::move(error));
    return;
  }
  ExitInfo info;
  if (WIFEXITED(status)) info.code = WEXITSTATUS(status);
  else info.signal = WTERMSIG(status);
  if (callbacks_.on_exit) callbacks_.on_exit(info);
}

void Session::OnExec(pid_t tid) {
  unsigned long former = 0;
  ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
  // A thread other than the leader exec'ed: it now has the leader's id and its old id is gone.
  const pid_t old_tid = static_cast<pid_t>(former);
  if (old_tid != tid && old_tid > 0) ForgetTracee(old_tid);
  pending_.erase(tid);
  access_.Forget(tid);  // a new address space
  if (tid == pid_ && starting_) Finish({});
  Resume(tid, 0);
}

void Session::OnSeccomp(pid_t tid) {
  Regs regs;
  const TracedSyscall* sc = GetRegs(tid, regs) ? FindTraced(SyscallNr(regs)) : nullptr;
  if (sc == nullptr && IsRootChange(SyscallNr(regs))) {
    DropTargetsBeforeRootChange(tid, regs);
    return;
  }
  if (sc == nullptr) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  counters_.syscall(static_cast<size_t>(sc - TracedSyscalls().data())).Bump();
  char path[PATH_MAX];
  const uint64_t path_addr = Arg(regs, sc->path_arg);
  PathMatch match;
  const TraceeAccess::Path read = access_.ReadPath(tid, path_addr, path, sizeof path);
  if (read == TraceeAccess::Path::kUnreadable) {
    // Never let a path nobody could read reach the real file system: the call fails as the kernel's
    // own read of it would (EFAULT), and the miss is counted.
    if (SetRegs(tid, Skipped(regs, -EFAULT))) counters_.unreadable().Bump();
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  if (read != TraceeAccess::Path::kRead || !Redirectable(tid, *sc, regs, path, match)) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  const PathRule& rule = *match.rule;
  const size_t index = static_cast<size_t>(&rule - rules_.data());
  if (sc->redirect_nr == kDoneByTracer) {
    TruncateForTracee(tid, regs, rule, path + match.suffix_offset);
    return;
  }
  if (!access_.HoldsTargetDir(tid, rule)) {
    counters_.missed(index).Bump();  // fail safe: the call goes to the real path
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  Regs redirected = SyscallInfoWorks(tid) ? regs : MarkedNotRun(regs);
  ApplyRedirect(*sc, redirected, rule.tracee_fd, path_addr + match.suffix_offset);
  if (!SetRegs(tid, redirected)) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  counters_.rewrite(index).Bump();
  // Stop once more when the call returns, to give the tracee back the registers it made the call
  // with: the syscall ABI promises them unchanged and inlined syscalls rely on that.
  pending_[tid] = Pending{regs, false};
  ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
}

// The rule targets reach every tracee as inherited descriptors. A process that changes its root or
// joins another mount namespace (runc init entering a container) has left the file system the rules
// are written for, and a directory descriptor of the host in a container's process is what
// CVE-2024-21626 turned into an escape (a working directory of /proc/self/fd/N, with runc before
// 1.1.12). So before such a call the tracer closes them in the process, one per stop: the call is
// turned into close(fd), and at its exit stop the tracee is sent back to make its own call again
// (registers only), which stops here once more until it holds none.
void Session::DropTargetsBeforeRootChange(pid_t tid, const Regs& regs) {
  const long nr = SyscallNr(regs);
  const auto nstype = static_cast<int>(Arg(regs, 1));
  bool leaves = nr != SYS_setns || (nstype & CLONE_NEWNS) != 0;
  if (!leaves && nstype == 0) {
    char name[64], target[64];
    snprintf(name, sizeof name, "/proc/%d/fd/%d", tid, static_cast<int>(Arg(regs, 0)));
    const ssize_t n = readlink(name, target, sizeof target - 1);
    leaves = n > 4 && std::string(target, 4) == "mnt:";
  }
  const PathRule* held = nullptr;
  for (const PathRule& rule : rules_) {
    if (leaves && kCanChangeSyscall && access_.HoldsTargetDir(tid, rule)) {
      held = &rule;
      break;
    }
  }
  if (held == nullptr) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  Regs close_it = SyscallInfoWorks(tid) ? regs : MarkedNotRun(regs);
  SetSyscallNr(close_it, SYS_close);
  SetArg(close_it, 0, static_cast<uint64_t>(held->tracee_fd));
  if (!SetRegs(tid, close_it)) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  pending_[tid] = Pending{regs, false, true};
  ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
}

// truncate(2) has no *at form: the tracer truncates the target for the tracee and skips its call with
// the result. It does so as the tracee would: with the calling thread's filesystem ids and groups
// (TraceeCredentials), and resolving the remainder from the rule's target descriptor, as every
// redirected call does, not by a path the tracer builds. Only the result register changes, so unlike
// a redirect this needs no second stop.
void Session::TruncateForTracee(pid_t tid, const Regs& regs, const PathRule& rule, const char* remainder) {
  int64_t result;
  {
    const TraceeCredentials as_tracee(tid);
    const int fd = as_tracee.ok() ? openat(rule.tracer_fd, remainder, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : -1;
    result = !as_tracee.ok() ? -EPERM : fd < 0 ? -errno : ftruncate(fd, static_cast<off_t>(Arg(regs, 1))) == 0 ? 0 : -errno;
    if (fd >= 0) close(fd);
  }
  if (SetRegs(tid, Skipped(regs, result))) counters_.rewrite(static_cast<size_t>(&rule - rules_.data())).Bump();
  ptrace(PTRACE_CONT, tid, nullptr, nullptr);
}

// Does the tracee's `path` go to a rule's target? A relative path is resolved in the call's base
// directory (its descriptor's, or the working directory); one whose remainder the redirect cannot
// point at in the tracee's own string goes to the real path, counted as missed.
bool Session::Redirectable(pid_t tid, const TracedSyscall& sc, const Regs& regs, const char* path, PathMatch& match) {
  if (MatchPath(rules_, path, match)) return match.rule->always || !RealPathExists(tid, path);
  if (path[0] == '/' || path[0] == '\0' || !MayMatchRelative(rules_, path)) return false;
  std::string base;
  std::string full;
  const int dirfd = sc.path_arg == 1 ? static_cast<int>(Arg(regs, 0)) : AT_FDCWD;
  if (!access_.BaseDirectory(tid, dirfd, base)) return false;
  const RelativeMatch result = MatchRelative(rules_, base, path, full, match);
  if (result == RelativeMatch::kNone || (!match.rule->always && RealPathExists(tid, full.c_str()))) return false;
  if (result == RelativeMatch::kUnreachable) {
    counters_.missed(static_cast<size_t>(match.rule - rules_.data())).Bump();
    return false;
  }
  return true;
}

// Asked once, at the first redirect's seccomp stop, before the call is marked or not.
bool Session::SyscallInfoWorks(pid_t tid) {
  if (!syscall_info_checked_) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof info), &info) > 0) {
      syscall_info_checked_ = true;
    } else if (errno != ESRCH) {
      syscall_info_checked_ = true;
      syscall_info_ok_ = false;
    }
  }
  return syscall_info_ok_;
}

void Session::OnSyscallStop(pid_t tid) {
  auto it = pending_.find(tid);
  if (it == pending_.end()) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  // Linux ≥ 4.8 goes from the seccomp stop straight to the exit stop; gVisor (like older Linux)
  // reports a syscall-entry stop in between. Ask the kernel which one this is where it can tell.
  if (syscall_info_ok_ && !it->second.exit_due) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof info), &info) > 0) {
      if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
        FinishRedirect(tid, it, info.exit.rval);
      } else {
        it->second.exit_due = true;
        ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
      }
      return;
    }
    if (errno == ESRCH) {
      pending_.erase(it);  // killed meanwhile; its exit is reported next
      return;
    }
  }
  // Without it: this thread's own state, and the mark its seccomp stop left (arch.h). No guessing.
  Regs now;
  if (!GetRegs(tid, now)) {
    pending_.erase(it);
    return;
  }
  if (!it->second.exit_due && StillNotRun(now)) {
    it->second.exit_due = true;
    ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
    return;
  }
  FinishRedirect(tid, it, ReturnValue(now));
}

void Session::FinishRedirect(pid_t tid, std::unordered_map<pid_t, Pending>::iterator it, int64_t result) {
  SetRegs(tid, it->second.restart ? Restarted(it->second.original) : WithResult(it->second.original, result));
  pending_.erase(it);
  ptrace(PTRACE_CONT, tid, nullptr, nullptr);
}

bool Session::Kill(int sig) {
  std::lock_guard<std::mutex> lock(alive_mutex_);
  if (reaped_.load()) return false;
  auto it = pidfds_.find(pid_);
  if (it != pidfds_.end()) return syscall(SYS_pidfd_send_signal, it->second, sig, nullptr, 0) == 0;
  return alive_.count(pid_) != 0 && ::kill(pid_, sig) == 0;
}

int Session::KillAll(int sig) {
  std::lock_guard<std::mutex> lock(alive_mutex_);
  int signalled = 0;
  if (pidfd_ok_) {
    for (const auto& [pid, pidfd] : pidfds_) {
      if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0) signalled++;
    }
    return signalled;
  }
  std::unordered_set<pid_t> processes;  // one signal per process, not per thread
  for (pid_t tid : alive_) processes.insert(ThreadGroupOf(tid));
  for (pid_t pid : processes) {
    if (::kill(pid, sig) == 0) signalled++;
  }
  return signalled;
}

}  // namespace interceptor

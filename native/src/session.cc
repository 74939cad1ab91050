#include "session.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>

#include "child.h"
#include "syscall_table.h"

namespace interceptor {
namespace {

constexpr int kPreferredTraceeFd = 1000;  // out of the way of the low numbers programs use

constexpr long kTraceOptions = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
                               PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In `missing` mode a path is redirected only when it really does not exist (same mount namespace).
bool RealPathExists(const char* path) {
  struct stat st;
  if (stat(path, &st) == 0) return true;
  return errno != ENOENT && errno != ENOTDIR;
}

bool IsStopSignal(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

}  // namespace

Session::Session(SpawnSpec spec, Callbacks callbacks)
    : spec_(std::move(spec)), callbacks_(std::move(callbacks)), rules_(spec_.rules) {
  syscall_counts_ = std::make_unique<Counter[]>(TracedSyscalls().size());
  rewrite_counts_ = std::make_unique<Counter[]>(rules_.size());
  missed_counts_ = std::make_unique<Counter[]>(rules_.size());
}

Session::~Session() {
  for (int fd : tracer_fds_) close(fd);
  if (report_fd_ >= 0) close(report_fd_);
}

std::shared_ptr<Session> Session::Start(SpawnSpec spec, Callbacks callbacks, StartError& error) {
  std::shared_ptr<Session> session(new Session(std::move(spec), std::move(callbacks)));
  std::future<StartError> started = session->started_.get_future();
  try {
    std::thread(&Session::Main, session).detach();  // the thread's copy of `session` keeps it alive
  } catch (const std::system_error& e) {
    error = {"thread", e.code().value(), ""};
    return nullptr;
  }
  error = started.get();
  return error.stage.empty() ? session : nullptr;
}

void Session::Finish(StartError error) {
  starting_ = false;
  started_ok_ = error.stage.empty();
  started_.set_value(std::move(error));
}

void Session::Main() {
  StartError error;
  if (!OpenTargets(error) || !Launch(error)) {
    Finish(std::move(error));
    return;
  }
  Loop();
  if (started_ok_ && callbacks_.on_done) callbacks_.on_done();
}

bool Session::OpenTargets(StartError& error) {
  // One descriptor per distinct target directory, shared by the rules that use it.
  std::map<std::string, size_t> by_dir;
  int highest = std::max({spec_.stdio[0], spec_.stdio[1], spec_.stdio[2]});
  for (PathRule& rule : rules_) {
    auto [it, fresh] = by_dir.emplace(rule.dir, tracer_fds_.size());
    if (fresh) {
      int fd = open(rule.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        error = {"target", errno, rule.dir};
        return false;
      }
      tracer_fds_.push_back(fd);
      highest = std::max(highest, fd);
    }
    rule.tracer_fd = tracer_fds_[it->second];
  }
  // The numbers the command holds them at: above every descriptor the child still needs before exec.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const long count = static_cast<long>(tracer_fds_.size());
  long base = std::max<long>(kPreferredTraceeFd, highest + 8);  // +8: the pipes opened next
  if (rl.rlim_cur != RLIM_INFINITY && base + count > static_cast<long>(rl.rlim_cur)) base = static_cast<long>(rl.rlim_cur) - count;
  if (base <= highest + 8) {
    error = {"descriptors", EMFILE, ""};
    return false;
  }
  for (PathRule& rule : rules_) {
    const size_t i = by_dir[rule.dir];
    rule.tracee_fd = static_cast<int>(base + static_cast<long>(i));
    struct stat st;
    if (fstat(rule.tracer_fd, &st) != 0) {
      error = {"target", errno, rule.dir};
      return false;
    }
    rule.dev = st.st_dev;
    rule.ino = st.st_ino;
  }
  return true;
}

bool Session::Launch(StartError& error) {
  // Everything the child needs is built now: after fork it must not allocate.
  std::vector<char*> argv = CStrings(spec_.argv);
  std::vector<char*> envp = CStrings(spec_.env);
  std::vector<int> dir_targets(tracer_fds_.size());
  for (const PathRule& rule : rules_) {
    auto at = std::find(tracer_fds_.begin(), tracer_fds_.end(), rule.tracer_fd) - tracer_fds_.begin();
    dir_targets[static_cast<size_t>(at)] = rule.tracee_fd;
  }
  std::vector<sock_filter> filter = BuildSeccompFilter();
  sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};

  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    error = {"fork", errno, ""};
    return false;
  }
  if (pipe2(report, O_CLOEXEC) != 0) {
    error = {"fork", errno, ""};
    close(go[0]);
    close(go[1]);
    return false;
  }
  ChildPlan plan{spec_.file.c_str(), argv.data(), envp.data(), spec_.cwd.empty() ? nullptr : spec_.cwd.c_str(),
                 {spec_.stdio[0], spec_.stdio[1], spec_.stdio[2]}, tracer_fds_.data(), dir_targets.data(),
                 static_cast<int>(tracer_fds_.size()), &prog, go[0], report[1], {go[1], report[0]}};
  pid_t child = fork();
  if (child == 0) RunChild(plan);
  const int fork_errno = errno;
  close(go[0]);
  close(report[1]);
  report_fd_ = report[0];
  if (child < 0) {
    close(go[1]);
    error = {"fork", fork_errno, ""};
    return false;
  }
  if (ptrace(PTRACE_SEIZE, child, nullptr, reinterpret_cast<void*>(kTraceOptions)) != 0) {
    error = {"ptrace", errno, ""};
    close(go[1]);  // the child reads end-of-file and exits
    int status;
    while (waitpid(child, &status, __WALL) < 0 && errno == EINTR) {
    }
    return false;
  }
  pid_ = child;
  alive_.insert(child);
  tracees_.Set(1);
  char byte = 1;
  ssize_t written = write(go[1], &byte, 1);
  (void)written;
  close(go[1]);
  return true;
}

void Session::Loop() {
  for (;;) {
    int status;
    const pid_t tid = waitpid(-1, &status, __WALL | __WNOTHREAD);  // only our own tracees, never node's children
    if (tid < 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: nothing traced is left
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      OnGone(tid, status);
      continue;
    }
    if (!WIFSTOPPED(status)) continue;
    stops_.Bump();
    if (alive_.insert(tid).second) tracees_.Set(alive_.size());  // a new thread or process's first stop
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
      signals_.Bump();  // a signal on its way to the tracee (Go's SIGURG among them): deliver it
      Resume(tid, sig);
    }
  }
}

void Session::Resume(pid_t tid, int sig) {
  const bool mid_redirect = !pending_.empty() && pending_.count(tid) != 0;
  ptrace(mid_redirect ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
}

void Session::OnGone(pid_t tid, int status) {
  alive_.erase(tid);
  pending_.erase(tid);
  access_.Forget(tid);
  tracees_.Set(alive_.size());
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
  if (old_tid != tid && old_tid > 0) {
    alive_.erase(old_tid);
    pending_.erase(old_tid);
    access_.Forget(old_tid);
    tracees_.Set(alive_.size());
  }
  pending_.erase(tid);
  access_.Forget(tid);  // a new address space
  if (tid == pid_ && starting_) Finish({});
  Resume(tid, 0);
}

void Session::OnSeccomp(pid_t tid) {
  Regs regs;
  const TracedSyscall* sc = GetRegs(tid, regs) ? FindTraced(SyscallNr(regs)) : nullptr;
  if (sc == nullptr) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  syscall_counts_[static_cast<size_t>(sc - TracedSyscalls().data())].Bump();
  char path[PATH_MAX];
  const uint64_t path_addr = Arg(regs, sc->path_arg);
  PathMatch match;
  if (!access_.ReadString(tid, path_addr, path, sizeof path) || !MatchPath(rules_, path, match) ||
      (!match.rule->always && RealPathExists(path))) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  const PathRule& rule = *match.rule;
  const size_t index = static_cast<size_t>(&rule - rules_.data());
  if (!access_.HoldsTargetDir(tid, rule)) {
    missed_counts_[index].Bump();  // fail safe: the call goes to the real path
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  Regs redirected = regs;
  ApplyRedirect(*sc, redirected, rule.tracee_fd, path_addr + match.suffix_offset);
  if (!SetRegs(tid, redirected)) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  rewrite_counts_[index].Bump();
  // Stop once more when the call returns, to give the tracee back the registers it made the call
  // with: the syscall ABI promises them unchanged and inlined syscalls rely on that.
  pending_[tid] = Pending{regs, false};
  ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
}

void Session::OnSyscallStop(pid_t tid) {
  auto it = pending_.find(tid);
  if (it == pending_.end()) {
    ptrace(PTRACE_CONT, tid, nullptr, nullptr);
    return;
  }
  // Linux ≥ 4.8 goes from the seccomp stop straight to the exit stop; gVisor (like older Linux)
  // reports a syscall-entry stop in between. Ask the kernel which one this is where it can tell.
  if (syscall_info_ok_) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof info), &info) > 0) {
      if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
        FinishRedirect(tid, it, info.exit.rval);
      } else {
        it->second.saw_entry = true;
        ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
      }
      return;
    }
    if (errno == ESRCH) {
      pending_.erase(it);  // killed meanwhile; its exit is reported next
      return;
    }
    syscall_info_ok_ = false;
  }
  Regs now;
  if (!GetRegs(tid, now)) {
    pending_.erase(it);
    return;
  }
  if (!it->second.saw_entry && LooksLikeEntryStop(now)) {
    it->second.saw_entry = true;
    ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr);
    return;
  }
  FinishRedirect(tid, it, ReturnValue(now));
}

void Session::FinishRedirect(pid_t tid, std::unordered_map<pid_t, Pending>::iterator it, int64_t result) {
  SetRegs(tid, WithResult(it->second.original, result));
  pending_.erase(it);
  ptrace(PTRACE_CONT, tid, nullptr, nullptr);
}

bool Session::Kill(int sig) {
  if (reaped_.load()) return false;
  return ::kill(pid_, sig) == 0;
}

CounterSnapshot Session::Counters() const {
  CounterSnapshot s;
  s.stops = stops_.Get();
  s.signals = signals_.Get();
  s.tracees = tracees_.Get();
  const auto& table = TracedSyscalls();
  for (size_t i = 0; i < table.size(); i++) {
    if (uint64_t n = syscall_counts_[i].Get()) s.syscalls.emplace_back(table[i].name, n);
  }
  for (size_t i = 0; i < rules_.size(); i++) {
    if (uint64_t n = rewrite_counts_[i].Get()) s.rewrites.emplace_back(rules_[i].key, n);
    if (uint64_t n = missed_counts_[i].Get()) s.missed.emplace_back(rules_[i].key, n);
  }
  return s;
}

}  // namespace interceptor

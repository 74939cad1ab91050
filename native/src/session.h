// One intercepted command, in the tracer process: a tracer thread of its own forks it, seizes it,
// installs the seccomp filter before exec, and then serves every stop of the command and its
// descendants until none is left. The process's main thread only sends signals for the addon.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "arch.h"
#include "counter_block.h"
#include "path_rules.h"
#include "spawn_spec.h"
#include "syscall_table.h"
#include "tracee_access.h"

namespace interceptor {

class Session : public std::enable_shared_from_this<Session> {
 public:
  struct Callbacks {
    std::function<void(const ExitInfo&)> on_exit;  // the command itself ended (tracer thread)
    std::function<void()> on_done;                 // no traced process is left; the thread ends
  };

  // Returns once the command has exec'ed; nullptr with `error` filled when it could not start.
  static std::shared_ptr<Session> Start(SpawnSpec spec, Callbacks callbacks, CounterBlock counters, StartError& error);

  ~Session();

  pid_t pid() const { return pid_; }
  // Signal the command; false once it has been reaped (its pid may belong to someone else then).
  bool Kill(int sig);
  // Signal every traced process still alive (the command and all it started); how many were signalled.
  int KillAll(int sig);

 private:
  // A redirected call between its seccomp stop and its exit stop, per thread.
  struct Pending {
    Regs original;         // the registers the tracee made the call with, restored at its exit stop
    bool exit_due = false;  // its entry stop has been seen (gVisor and Linux before 4.8 report one)
    bool restart = false;   // a close() made in place of the call: the tracee makes its call again
  };

  Session(SpawnSpec spec, Callbacks callbacks, CounterBlock counters);
  void Main();
  bool OpenTargets(StartError& error);
  bool Launch(StartError& error);
  void Loop();
  void Serve(pid_t tid, int status);
  void OnGone(pid_t tid, int status);
  void OnSeccomp(pid_t tid);
  void DropTargetsBeforeRootChange(pid_t tid, const Regs& regs);
  void TruncateForTracee(pid_t tid, const Regs& regs, const PathRule& rule, const char* remainder);
  bool Redirectable(pid_t tid, const TracedSyscall& sc, const Regs& regs, const char* path, PathMatch& match);
  bool SyscallInfoWorks(pid_t tid);
  void OnSyscallStop(pid_t tid);
  void FinishRedirect(pid_t tid, std::unordered_map<pid_t, Pending>::iterator it, int64_t result);
  void OnExec(pid_t tid);
  void Resume(pid_t tid, int sig);
  void AddTracee(pid_t tid);
  void ForgetTracee(pid_t tid);
  void Finish(StartError error);

  SpawnSpec spec_;
  Callbacks callbacks_;
  std::vector<PathRule>& rules_;
  std::vector<int> tracer_fds_;
  pid_t pid_ = -1;
  int report_fd_ = -1;
  bool starting_ = true;
  bool started_ok_ = false;
  std::promise<StartError> started_;
  std::atomic<bool> reaped_{false};

  bool syscall_info_ok_;  // PTRACE_GET_SYSCALL_INFO works (not in gVisor)
  bool syscall_info_checked_ = false;
  TraceeAccess access_;
  std::unordered_set<pid_t> alive_;  // written by the tracer thread under alive_mutex_, read by it freely
  // A pidfd per traced process (by its leader's id), opened at its first stop: a signal sent through
  // it can never reach a process that reused the id of one reaped meanwhile. Empty without pidfd_open.
  std::unordered_map<pid_t, int> pidfds_;
  bool pidfd_ok_ = true;  // pidfd_open exists (Linux 5.3+)
  mutable std::mutex alive_mutex_;  // Kill and KillAll read alive_ and pidfds_ from the main thread
  std::unordered_map<pid_t, Pending> pending_;

  CounterBlock counters_;
};

}  // namespace interceptor

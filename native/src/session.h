// One intercepted command: a tracer thread of its own forks it, seizes it, installs the seccomp
// filter before exec, and then serves every stop of the command and its descendants until none is
// left. The JS thread only reads counters and sends signals; it never waits on the tracer.
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
#include "path_rules.h"
#include "syscall_table.h"
#include "tracee_access.h"

namespace interceptor {

struct SpawnSpec {
  std::string file;  // absolute path of the executable
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;               // empty: inherit
  int stdio[3] = {0, 1, 2};
  std::vector<PathRule> rules;
};

// Why the command did not start. stage: "target" (a target directory could not be opened),
// "descriptors", "stdio", "fork", "ptrace", "cwd", "seccomp", "exec", "thread".
struct StartError {
  std::string stage;
  int error = 0;  // errno, 0 when none applies
  std::string path;
};

struct ExitInfo {
  int code = -1;   // exit code, or -1 when killed by a signal
  int signal = 0;  // the signal that killed it, or 0
};

struct CounterSnapshot {
  uint64_t stops = 0;
  uint64_t signals = 0;
  uint64_t tracees = 0;
  std::vector<std::pair<std::string, uint64_t>> syscalls;  // by syscall name
  std::vector<std::pair<std::string, uint64_t>> rewrites;  // by rule source path
  std::vector<std::pair<std::string, uint64_t>> missed;    // matched, but the tracee had lost the descriptor
};

// Written only by the tracer thread, read by any: a relaxed load/store pair is enough (no lock prefix).
class Counter {
 public:
  void Bump() { v_.store(v_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  void Set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  struct Callbacks {
    std::function<void(const ExitInfo&)> on_exit;  // the command itself ended (tracer thread)
    std::function<void()> on_done;                 // no traced process is left; the thread ends
  };

  // Returns once the command has exec'ed; nullptr with `error` filled when it could not start.
  static std::shared_ptr<Session> Start(SpawnSpec spec, Callbacks callbacks, StartError& error);

  ~Session();

  pid_t pid() const { return pid_; }
  CounterSnapshot Counters() const;
  // Signal the command; false once it has been reaped (its pid may belong to someone else then).
  bool Kill(int sig);
  // Signal every traced process still alive (the command and all it started); how many were signalled.
  int KillAll(int sig);

 private:
  struct Pending {
    Regs original;  // the registers the tracee made the call with, restored at its exit stop
    bool saw_entry = false;
  };

  Session(SpawnSpec spec, Callbacks callbacks);
  void Main();
  bool OpenTargets(StartError& error);
  bool Launch(StartError& error);
  void Loop();
  void Serve(pid_t tid, int status);
  void OnGone(pid_t tid, int status);
  void OnSeccomp(pid_t tid);
  void TruncateForTracee(pid_t tid, const Regs& regs, const PathRule& rule, const char* remainder);
  bool Redirectable(pid_t tid, const TracedSyscall& sc, const Regs& regs, const char* path, PathMatch& match);
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

  TraceeAccess access_;
  bool syscall_info_ok_ = true;  // PTRACE_GET_SYSCALL_INFO works (not in gVisor)
  std::unordered_set<pid_t> alive_;  // written by the tracer thread under alive_mutex_, read by it freely
  mutable std::mutex alive_mutex_;     // KillAll reads alive_ from the JS thread
  std::unordered_map<pid_t, Pending> pending_;

  Counter stops_, signals_, tracees_;
  std::unique_ptr<Counter[]> syscall_counts_;
  std::unique_ptr<Counter[]> rewrite_counts_;
  std::unique_ptr<Counter[]> missed_counts_;
};

}  // namespace interceptor

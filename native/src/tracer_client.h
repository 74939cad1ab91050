// The addon's side of the tracer process: it starts the process, hands it the spec, reads its events
// on a thread of its own (woken only by the command's exit and the end), and asks it to send signals.
// Counters are read from the memory both share, without waking the tracer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "counter_block.h"
#include "spawn_spec.h"
#include "wire.h"

namespace interceptor {

struct CounterSnapshot {
  uint64_t stops = 0;
  uint64_t signals = 0;
  uint64_t tracees = 0;
  std::vector<std::pair<std::string, uint64_t>> syscalls;  // by syscall name
  std::vector<std::pair<std::string, uint64_t>> rewrites;  // by rule source path
  std::vector<std::pair<std::string, uint64_t>> missed;    // by rule source path, and kUnreadableKey
};

// The missed entry for calls whose path the tracer could not read (they fail with EFAULT).
inline constexpr const char* kUnreadableKey = "(path unreadable)";

class TracerClient {
 public:
  // Called on the reader thread: the command's exit, then done once the tracer process has ended.
  using OnEvent = std::function<void(const wire::Event&)>;

  // Returns once the command has exec'ed; nullptr with `error` filled when it could not start.
  static std::shared_ptr<TracerClient> Start(const std::string& tracer, SpawnSpec spec, OnEvent on_event,
                                             StartError& error);
  ~TracerClient();

  pid_t pid() const { return pid_; }
  CounterSnapshot Counters() const;
  bool Kill(int sig);    // false once the command has been reaped
  int KillAll(int sig);  // how many processes were signalled

 private:
  TracerClient() = default;
  bool Launch(const std::string& tracer, const int stdio[3], StartError& error);
  void ReadEvents(OnEvent on_event);
  int32_t Ask(wire::Op op, int sig);

  std::vector<std::string> rule_keys_;
  pid_t tracer_pid_ = -1;
  pid_t pid_ = -1;
  int control_fd_ = -1;
  int events_fd_ = -1;
  void* shared_ = nullptr;
  size_t shared_bytes_ = 0;
  CounterBlock counters_;
};

}  // namespace interceptor

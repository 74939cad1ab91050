// How the addon and the tracer process talk. The addon starts the tracer with these descriptors:
// the command's stdio, a control socket (the spec, the start result, then kill requests and their
// replies: only the JS thread asks), an events pipe (the command's exit, then "done"), and the
// shared counter memory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "spawn_spec.h"

namespace interceptor::wire {

constexpr int kStdioFd = 3;  // 3, 4, 5: the command's stdin, stdout, stderr
constexpr int kControlFd = 6;
constexpr int kEventsFd = 7;
constexpr int kCountersFd = 8;

enum class Op : int32_t { kKill = 1, kKillAll = 2 };

struct Request {
  Op op;
  int32_t signal;
};

struct Reply {
  int32_t value;  // kKill: 1 when signalled; kKillAll: how many processes were
};

enum class EventType : int32_t { kExit = 1, kDone = 2 };

struct Event {
  EventType type;
  ExitInfo exit;  // kExit only
};

bool WriteAll(int fd, const void* data, size_t size);
bool ReadAll(int fd, void* data, size_t size);  // false on end-of-file or error

bool SendSpec(int fd, const SpawnSpec& spec);
bool ReceiveSpec(int fd, SpawnSpec& spec);

// The start result: the command's pid, or -1 with `error` filled.
bool SendStart(int fd, pid_t pid, const StartError& error);
bool ReceiveStart(int fd, pid_t& pid, StartError& error);

}  // namespace interceptor::wire

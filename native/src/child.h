// What the forked child does between fork and exec. The parent (the tracer process) is multi-threaded,
// so the child may only make plain system calls: everything it needs is prepared before the fork.
#pragma once

#include <linux/filter.h>

#include <cstdint>

namespace interceptor {

// Why the child could not become the command; sent to the tracer over a close-on-exec pipe.
enum class ChildStage : int32_t { kCwd = 1, kSeccomp = 2, kExec = 3, kDescriptors = 4, kStdio = 5 };

struct ChildReport {
  int32_t stage;
  int32_t error;  // errno
};

struct ChildPlan {
  const char* file;        // absolute path of the executable
  char* const* argv;       // NULL-terminated
  char* const* envp;       // NULL-terminated
  const char* cwd;         // nullptr: inherit
  int stdio[3];            // descriptors that become 0, 1, 2
  const int* dir_fds;      // the tracer's descriptors of the target directories...
  const int* dir_targets;  // ...and the numbers the command gets them at (inherited, not close-on-exec)
  int dir_count;
  const sock_fprog* filter;
  int go_fd;      // read end: one byte arrives once the tracer has seized this process
  int report_fd;  // write end, close-on-exec: a ChildReport when something fails
  int close_fds[2];  // the tracer's ends of both pipes (the go pipe must see end-of-file if the tracer gives up)
};

// Never returns: execs the command or exits 127.
[[noreturn]] void RunChild(const ChildPlan& plan);

}  // namespace interceptor

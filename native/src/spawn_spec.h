// What the addon asks the tracer process to run, and what comes back: shared by both sides.
#pragma once

#include <string>
#include <vector>

#include "path_rules.h"

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
// "descriptors", "stdio", "fork", "ptrace", "cwd", "seccomp", "exec", "thread", "tracer" (the tracer
// process itself could not be started).
struct StartError {
  std::string stage;
  int error = 0;  // errno, 0 when none applies
  std::string path;
};

struct ExitInfo {
  int code = -1;   // exit code, or -1 when killed by a signal
  int signal = 0;  // the signal that killed it, or 0
};

}  // namespace interceptor

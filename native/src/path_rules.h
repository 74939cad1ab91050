// Which paths are redirected, and where the remainder (relative to the rule's target) starts. Pure
// string work: the rules arrive already validated and sorted (longest prefix first) from TypeScript.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace interceptor {

struct PathRule {
  std::string prefix;  // normalized absolute directory, no trailing slash: "/proc/sys/vm"
  std::string name;    // file rule: the remainder must be exactly this; empty: any remainder
  std::string dir;     // the target directory the remainder is resolved in
  std::string key;     // what the rewrite counter is reported under (the rule's source path)
  bool always = true;  // false: only when the real path does not exist
  // Filled in by the session once the target directory is open:
  int tracer_fd = -1;  // the tracer's descriptor of `dir` (close-on-exec)
  int tracee_fd = -1;  // the number every tracee holds the same open file at
  dev_t dev = 0;
  ino_t ino = 0;
};

struct PathMatch {
  const PathRule* rule = nullptr;
  size_t suffix_offset = 0;  // bytes from the start of the path to the relative remainder
};

// The first rule whose prefix covers `path` (repeated slashes count as one) with a non-empty
// remainder that cannot climb out of the target (no ".." component). Relative paths never match.
bool MatchPath(const std::vector<PathRule>& rules, const char* path, PathMatch& out);

// Could a rule match a relative path? Only when some rule is a directory rule, or a file rule names
// the path's last component: a cheap test before asking the kernel for the path's base directory.
bool MayMatchRelative(const std::vector<PathRule>& rules, const char* rel);

enum class RelativeMatch {
  kNone,         // no rule covers base/rel
  kMatched,      // out.suffix_offset is an offset into `rel` itself
  kUnreachable,  // out.rule covers it, but the remainder does not end `rel` (it begins in `base`, or
                 // `rel` spells it with "." components): a redirect can only point into `rel`
};

// A relative path `rel` resolved in the absolute directory `base` (the caller's working directory, or
// the directory its descriptor names): `full` receives base/rel without "." components, and the
// match is made on it. A ".." component never matches: the kernel resolves it after following
// symlinks, which text cannot do.
RelativeMatch MatchRelative(const std::vector<PathRule>& rules, const std::string& base, const char* rel, std::string& full,
                            PathMatch& out);

}  // namespace interceptor

#include "path_rules.h"

#include <cstring>

namespace interceptor {
namespace {

// Does `p` (NUL-terminated) contain a ".." path component?
bool HasDotDot(const char* p) {
  while (*p) {
    while (*p == '/') p++;
    const char* start = p;
    while (*p && *p != '/') p++;
    if (p - start == 2 && start[0] == '.' && start[1] == '.') return true;
  }
  return false;
}

// After `prefix`, where does the remainder of `path` start? nullptr when the prefix does not cover it.
const char* AfterPrefix(const std::string& prefix, const char* path) {
  const char* p = path;
  for (char c : prefix) {
    if (c == '/') {
      if (*p != '/') return nullptr;
      while (*p == '/') p++;
    } else {
      if (*p != c) return nullptr;
      p++;
    }
  }
  if (*p != '/') return nullptr;  // "/proc/sysctl" is not under "/proc/sys"; the prefix itself is not redirected
  while (*p == '/') p++;
  return p;
}

}  // namespace

bool MatchPath(const std::vector<PathRule>& rules, const char* path, PathMatch& out) {
  if (path[0] != '/') return false;
  for (const PathRule& rule : rules) {
    const char* rest = AfterPrefix(rule.prefix, path);
    if (rest == nullptr || *rest == '\0') continue;
    if (!rule.name.empty() ? std::strcmp(rest, rule.name.c_str()) != 0 : HasDotDot(rest)) continue;
    out.rule = &rule;
    out.suffix_offset = static_cast<size_t>(rest - path);
    return true;
  }
  return false;
}

}  // namespace interceptor

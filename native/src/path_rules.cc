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

// The length of `p` without trailing slashes.
size_t TrimmedLength(const char* p) {
  size_t n = std::strlen(p);
  while (n > 0 && p[n - 1] == '/') n--;
  return n;
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

bool MayMatchRelative(const std::vector<PathRule>& rules, const char* rel) {
  const size_t end = TrimmedLength(rel);
  size_t start = end;
  while (start > 0 && rel[start - 1] != '/') start--;
  for (const PathRule& rule : rules) {
    if (rule.name.empty()) return true;
    if (rule.name.size() == end - start && std::memcmp(rel + start, rule.name.data(), end - start) == 0) return true;
  }
  return false;
}

RelativeMatch MatchRelative(const std::vector<PathRule>& rules, const std::string& base, const char* rel, std::string& full,
                            PathMatch& out) {
  if (rel[0] == '\0' || rel[0] == '/' || base.empty() || base[0] != '/' || HasDotDot(rel)) return RelativeMatch::kNone;
  full = base;
  for (const char* p = rel; *p;) {
    while (*p == '/') p++;
    const char* start = p;
    while (*p && *p != '/') p++;
    const size_t n = static_cast<size_t>(p - start);
    if (n == 0 || (n == 1 && start[0] == '.')) continue;
    if (full.back() != '/') full += '/';
    full.append(start, n);
  }
  PathMatch match;
  if (!MatchPath(rules, full.c_str(), match)) return RelativeMatch::kNone;
  out.rule = match.rule;
  const char* remainder = full.c_str() + match.suffix_offset;
  const size_t length = std::strlen(remainder);
  const size_t end = TrimmedLength(rel);
  if (length > end || std::memcmp(rel + end - length, remainder, length) != 0 || (end > length && rel[end - length - 1] != '/')) {
    return RelativeMatch::kUnreachable;
  }
  out.suffix_offset = end - length;
  return RelativeMatch::kMatched;
}

}  // namespace interceptor

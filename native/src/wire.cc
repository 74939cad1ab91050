#include "wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

namespace interceptor::wire {
namespace {

// A message is a flat run of length-prefixed strings and numbers, written and read in one order.
class Writer {
 public:
  void Number(int64_t v) { Bytes(&v, sizeof v); }
  void String(const std::string& s) {
    Number(static_cast<int64_t>(s.size()));
    Bytes(s.data(), s.size());
  }
  bool Send(int fd) {
    const uint64_t size = buf_.size();
    return WriteAll(fd, &size, sizeof size) && WriteAll(fd, buf_.data(), buf_.size());
  }

 private:
  void Bytes(const void* p, size_t n) { buf_.insert(buf_.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n); }
  std::vector<char> buf_;
};

class Reader {
 public:
  bool Receive(int fd) {
    uint64_t size = 0;
    if (!ReadAll(fd, &size, sizeof size) || size > (64u << 20)) return false;
    buf_.resize(size);
    return ReadAll(fd, buf_.data(), size);
  }
  int64_t Number() {
    int64_t v = 0;
    Bytes(&v, sizeof v);
    return v;
  }
  std::string String() {
    const int64_t n = Number();
    if (n < 0 || static_cast<size_t>(n) > buf_.size() - at_) {
      ok_ = false;
      return {};
    }
    std::string s(buf_.data() + at_, static_cast<size_t>(n));
    at_ += static_cast<size_t>(n);
    return s;
  }
  std::vector<std::string> Strings() {
    std::vector<std::string> v(static_cast<size_t>(std::max<int64_t>(0, Number())));
    for (auto& s : v) s = String();
    return v;
  }
  bool ok() const { return ok_; }

 private:
  void Bytes(void* p, size_t n) {
    if (n > buf_.size() - at_) {
      ok_ = false;
      return;
    }
    std::copy(buf_.data() + at_, buf_.data() + at_ + n, static_cast<char*>(p));
    at_ += n;
  }
  std::vector<char> buf_;
  size_t at_ = 0;
  bool ok_ = true;
};

void WriteStrings(Writer& w, const std::vector<std::string>& v) {
  w.Number(static_cast<int64_t>(v.size()));
  for (const auto& s : v) w.String(s);
}

}  // namespace

bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    const ssize_t written = n < 0 && errno == ENOTSOCK ? write(fd, p, size) : n;
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    p += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool SendSpec(int fd, const SpawnSpec& spec) {
  Writer w;
  w.String(spec.file);
  WriteStrings(w, spec.argv);
  WriteStrings(w, spec.env);
  w.String(spec.cwd);
  w.Number(static_cast<int64_t>(spec.rules.size()));
  for (const PathRule& r : spec.rules) {
    w.String(r.prefix);
    w.String(r.name);
    w.String(r.dir);
    w.String(r.key);
    w.Number(r.always ? 1 : 0);
  }
  return w.Send(fd);
}

bool ReceiveSpec(int fd, SpawnSpec& spec) {
  Reader r;
  if (!r.Receive(fd)) return false;
  spec.file = r.String();
  spec.argv = r.Strings();
  spec.env = r.Strings();
  spec.cwd = r.String();
  spec.rules.resize(static_cast<size_t>(std::max<int64_t>(0, r.Number())));
  for (PathRule& rule : spec.rules) {
    rule.prefix = r.String();
    rule.name = r.String();
    rule.dir = r.String();
    rule.key = r.String();
    rule.always = r.Number() != 0;
  }
  return r.ok();
}

bool SendStart(int fd, pid_t pid, const StartError& error) {
  Writer w;
  w.Number(pid);
  w.String(error.stage);
  w.Number(error.error);
  w.String(error.path);
  return w.Send(fd);
}

bool ReceiveStart(int fd, pid_t& pid, StartError& error) {
  Reader r;
  if (!r.Receive(fd)) return false;
  pid = static_cast<pid_t>(r.Number());
  error.stage = r.String();
  error.error = static_cast<int>(r.Number());
  error.path = r.String();
  return r.ok();
}

}  // namespace interceptor::wire

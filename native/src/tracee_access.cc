#include "tracee_access.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace interceptor {
namespace {

constexpr uint64_t kPage = 4096;  // the smallest page size: a read never crosses a mapping boundary
constexpr size_t kFirstRead = 256;  // most paths are shorter: copy no more than that at first

}  // namespace

TraceeAccess::~TraceeAccess() {
  for (auto& [tid, fd] : mem_fds_) close(fd);
}

ssize_t TraceeAccess::Read(pid_t tid, uint64_t addr, char* buf, size_t len) {
  if (!use_proc_mem_) {
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n >= 0 || errno != ENOSYS) return n;
    use_proc_mem_ = true;
  }
  auto it = mem_fds_.find(tid);
  if (it == mem_fds_.end()) {
    char name[48];
    std::snprintf(name, sizeof name, "/proc/%d/mem", tid);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    it = mem_fds_.emplace(tid, fd).first;
  }
  return pread(it->second, buf, len, static_cast<off_t>(addr));
}

bool TraceeAccess::ReadString(pid_t tid, uint64_t addr, char* buf, size_t cap) {
  if (addr == 0) return false;
  size_t off = 0;
  while (off < cap) {
    size_t chunk = kPage - ((addr + off) % kPage);
    if (off == 0 && chunk > kFirstRead) chunk = kFirstRead;
    if (chunk > cap - off) chunk = cap - off;
    ssize_t n = Read(tid, addr + off, buf + off, chunk);
    if (n <= 0) return false;
    if (std::memchr(buf + off, '\0', static_cast<size_t>(n)) != nullptr) return true;
    off += static_cast<size_t>(n);
  }
  return false;
}

bool TraceeAccess::HoldsTargetDir(pid_t tid, const PathRule& rule) {
  if (use_kcmp_) {
    long r = syscall(SYS_kcmp, getpid(), tid, KCMP_FILE, rule.tracer_fd, rule.tracee_fd);
    if (r >= 0) return r == 0;
    if (errno == EBADF) return false;
    use_kcmp_ = false;  // ENOSYS (gVisor, kernels without CONFIG_KCMP) or EPERM
  }
  char name[64];
  std::snprintf(name, sizeof name, "/proc/%d/fd/%d", tid, rule.tracee_fd);
  struct stat st;
  return stat(name, &st) == 0 && st.st_dev == rule.dev && st.st_ino == rule.ino;
}

bool TraceeAccess::BaseDirectory(pid_t tid, int dirfd, std::string& out) {
  char name[64];
  if (dirfd == AT_FDCWD) std::snprintf(name, sizeof name, "/proc/%d/cwd", tid);
  else std::snprintf(name, sizeof name, "/proc/%d/fd/%d", tid, dirfd);
  char target[PATH_MAX];
  const ssize_t n = readlink(name, target, sizeof target - 1);
  if (n <= 0 || target[0] != '/') return false;
  out.assign(target, static_cast<size_t>(n));
  static const std::string kDeleted = " (deleted)";
  return !(out.size() > kDeleted.size() && out.compare(out.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0);
}

void TraceeAccess::Forget(pid_t tid) {
  auto it = mem_fds_.find(tid);
  if (it == mem_fds_.end()) return;
  close(it->second);
  mem_fds_.erase(it);
}

}  // namespace interceptor

#include "tracee_access.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace interceptor {
namespace {

constexpr uint64_t kPage = 4096;  // the smallest page size: a read never crosses a mapping boundary
constexpr size_t kFirstRead = 256;  // most paths are shorter: copy no more than that at first

}  // namespace

TraceeAccess::~TraceeAccess() {
  for (auto& [tid, fd] : mem_fds_) close(fd);
}

pid_t ThreadGroupOf(pid_t tid) {
  char file[64];
  std::snprintf(file, sizeof file, "/proc/%d/status", tid);
  FILE* f = std::fopen(file, "re");
  if (f == nullptr) return tid;
  char line[256];
  pid_t tgid = tid;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "Tgid: %d", &tgid) == 1) break;
  }
  std::fclose(f);
  return tgid;
}

ssize_t TraceeAccess::Read(pid_t tid, uint64_t addr, char* buf, size_t len) {
  ssize_t n = -1;
  if (!use_proc_mem_) {
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == ENOSYS) use_proc_mem_ = true;
  }
  if (use_proc_mem_) n = ReadProcMem(tid, addr, buf, len);
  return n > 0 ? n : Peek(tid, addr, buf, len);
}

ssize_t TraceeAccess::ReadProcMem(pid_t tid, uint64_t addr, char* buf, size_t len) {
  auto group = thread_groups_.find(tid);
  if (group == thread_groups_.end()) group = thread_groups_.emplace(tid, ThreadGroupOf(tid)).first;
  auto it = mem_fds_.find(group->second);
  if (it == mem_fds_.end()) {
    // Opened through the stopped thread: a leader that has exited ahead of its threads has no memory.
    char name[48];
    std::snprintf(name, sizeof name, "/proc/%d/mem", tid);
    const int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    it = mem_fds_.emplace(group->second, fd).first;
  }
  return pread(it->second, buf, len, static_cast<off_t>(addr));
}

// Word by word, as far as the words can be read.
ssize_t TraceeAccess::Peek(pid_t tid, uint64_t addr, char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    const uint64_t at = addr + done;
    const uint64_t word_at = at & ~uint64_t{sizeof(long) - 1};
    errno = 0;
    const long word = ptrace(PTRACE_PEEKDATA, tid, reinterpret_cast<void*>(word_at), nullptr);
    if (errno != 0) break;
    const size_t skip = static_cast<size_t>(at - word_at);
    const size_t n = std::min(sizeof word - skip, len - done);
    std::memcpy(buf + done, reinterpret_cast<const char*>(&word) + skip, n);
    done += n;
  }
  return done > 0 ? static_cast<ssize_t>(done) : -1;
}

namespace {

// The filesystem ids (the fourth of each line) and the groups of a thread, from /proc/TID/status.
bool ReadCredentials(pid_t tid, uid_t& fsuid, gid_t& fsgid, std::vector<gid_t>& groups) {
  char file[64];
  std::snprintf(file, sizeof file, "/proc/%d/status", tid);
  FILE* f = std::fopen(file, "re");
  if (f == nullptr) return false;
  char line[4096];
  int found = 0;
  unsigned r, e, saved, fs;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "Uid: %u %u %u %u", &r, &e, &saved, &fs) == 4) {
      fsuid = fs;
      found |= 1;
    } else if (std::sscanf(line, "Gid: %u %u %u %u", &r, &e, &saved, &fs) == 4) {
      fsgid = fs;
      found |= 2;
    } else if (std::strncmp(line, "Groups:", 7) == 0) {
      char* p = line + 7;
      for (char* end; (fs = static_cast<unsigned>(std::strtoul(p, &end, 10))), end != p; p = end) groups.push_back(fs);
      found |= 4;
    }
  }
  std::fclose(f);
  return found == 7;
}

std::vector<gid_t> OwnGroups() {
  std::vector<gid_t> groups(static_cast<size_t>(std::max(0L, syscall(SYS_getgroups, 0, nullptr))));
  const long n = syscall(SYS_getgroups, groups.size(), groups.data());
  groups.resize(static_cast<size_t>(std::max(0L, n)));
  return groups;
}

// The calling thread's filesystem ids (an invalid id changes nothing and returns the current one);
// where setfsuid and setfsgid are missing (gVisor) they are the effective ids, and cannot be switched.
uid_t FsUid() {
  const long r = syscall(SYS_setfsuid, static_cast<uid_t>(-1));
  return r < 0 ? geteuid() : static_cast<uid_t>(r);
}
gid_t FsGid() {
  const long r = syscall(SYS_setfsgid, static_cast<gid_t>(-1));
  return r < 0 ? getegid() : static_cast<gid_t>(r);
}

}  // namespace

TraceeCredentials::TraceeCredentials(pid_t tid) {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  if (!ReadCredentials(tid, uid, gid, groups)) return;
  old_uid_ = FsUid();
  old_gid_ = FsGid();
  old_groups_ = OwnGroups();
  std::vector<gid_t> sorted = groups, own = old_groups_;
  std::sort(sorted.begin(), sorted.end());
  std::sort(own.begin(), own.end());
  if (uid == old_uid_ && gid == old_gid_ && sorted == own) {
    ok_ = true;
    return;
  }
  switched_ = true;
  syscall(SYS_setgroups, groups.size(), groups.data());
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);  // last: leaving fs uid 0 drops the file capabilities needed above
  std::vector<gid_t> now = OwnGroups();
  std::sort(now.begin(), now.end());
  ok_ = FsUid() == uid && FsGid() == gid && now == sorted;
}

TraceeCredentials::~TraceeCredentials() {
  if (!switched_) return;
  syscall(SYS_setfsuid, old_uid_);  // first: back to fs uid 0 restores the capabilities for the rest
  syscall(SYS_setfsgid, old_gid_);
  syscall(SYS_setgroups, old_groups_.size(), old_groups_.data());
}

TraceeAccess::Path TraceeAccess::ReadPath(pid_t tid, uint64_t addr, char* buf, size_t cap) {
  if (addr == 0) return Path::kNull;
  size_t off = 0;
  while (off < cap) {
    size_t chunk = kPage - ((addr + off) % kPage);
    if (off == 0 && chunk > kFirstRead) chunk = kFirstRead;
    if (chunk > cap - off) chunk = cap - off;
    ssize_t n = Read(tid, addr + off, buf + off, chunk);
    if (n <= 0) return Path::kUnreadable;
    if (std::memchr(buf + off, '\0', static_cast<size_t>(n)) != nullptr) return Path::kRead;
    off += static_cast<size_t>(n);
  }
  return Path::kTooLong;
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
  thread_groups_.erase(tid);
  auto it = mem_fds_.find(tid);
  if (it == mem_fds_.end()) return;
  close(it->second);
  mem_fds_.erase(it);
}

}  // namespace interceptor

// Looking into a stopped tracee without changing it: reading a path string, and checking that it
// still holds the target directory's descriptor at the agreed number.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "path_rules.h"

namespace interceptor {

class TraceeAccess {
 public:
  ~TraceeAccess();

  enum class Path {
    kRead,        // buf holds the NUL-terminated path
    kNull,        // the pointer is NULL (utimensat's "this descriptor itself")
    kTooLong,     // no NUL within cap bytes: the kernel refuses it too (ENAMETOOLONG)
    kUnreadable,  // neither reader could read it: the kernel cannot either (EFAULT)
  };

  // Copy the NUL-terminated string at `addr` into buf (at most cap bytes including the NUL). Reads
  // page by page so an unmapped page after a short string never fails the read; any read that fails
  // is tried again with PTRACE_PEEKDATA (as PRoot does) before the path counts as unreadable.
  Path ReadPath(pid_t tid, uint64_t addr, char* buf, size_t cap);

  // Is the tracee's descriptor `rule.tracee_fd` still the same open file as the tracer's? A tracee
  // may have closed it or put something else at that number; then nothing is redirected.
  bool HoldsTargetDir(pid_t tid, const PathRule& rule);

  // The absolute directory a relative path in `tid`'s call is resolved in: its working directory
  // (dirfd AT_FDCWD) or the directory open at `dirfd`. False when there is none a path can name
  // (deleted, a pipe, a descriptor that is not open).
  bool BaseDirectory(pid_t tid, int dirfd, std::string& out);

  // Forget what is kept for a thread that exited or exec'ed: its process's memory descriptor too
  // when it is the leader (reaped last, and the one whose id an exec leaves).
  void Forget(pid_t tid);

 private:
  ssize_t Read(pid_t tid, uint64_t addr, char* buf, size_t len);
  ssize_t ReadProcMem(pid_t tid, uint64_t addr, char* buf, size_t len);
  static ssize_t Peek(pid_t tid, uint64_t addr, char* buf, size_t len);

  bool use_proc_mem_ = false;  // process_vm_readv is missing (gVisor): read /proc/PID/mem instead
  bool use_kcmp_ = true;       // kcmp is missing (gVisor): compare /proc/TID/fd/N's inode instead
  // One /proc/PID/mem descriptor per traced process (all its threads share one address space), by
  // the process's id; and which process each thread seen so far belongs to.
  std::unordered_map<pid_t, int> mem_fds_;
  std::unordered_map<pid_t, pid_t> thread_groups_;
};

// For as long as it lives, the calling thread has a tracee thread's filesystem uid and gid and its
// supplementary groups, so that a call the tracer makes for the tracee gets the tracee's permission
// checks. Raw per-thread syscalls: the tracer's other thread keeps its own credentials. Not ok() when
// they could not be read or taken on (an unprivileged tracer, a tracee with other ids).
class TraceeCredentials {
 public:
  explicit TraceeCredentials(pid_t tid);
  ~TraceeCredentials();
  TraceeCredentials(const TraceeCredentials&) = delete;
  TraceeCredentials& operator=(const TraceeCredentials&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
  bool switched_ = false;
  uid_t old_uid_ = 0;
  gid_t old_gid_ = 0;
  std::vector<gid_t> old_groups_;
};

// The process a thread belongs to; the thread's own id when /proc cannot tell (kill() with a thread's
// id still reaches its whole process).
pid_t ThreadGroupOf(pid_t tid);

}  // namespace interceptor

// Looking into a stopped tracee without changing it: reading a path string, and checking that it
// still holds the target directory's descriptor at the agreed number.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "path_rules.h"

namespace interceptor {

class TraceeAccess {
 public:
  ~TraceeAccess();

  // Copy the NUL-terminated string at `addr` into buf (at most cap bytes including the NUL); false on
  // a bad pointer or a string that does not fit. Reads page by page so an unmapped page after a
  // short string never fails the read.
  bool ReadString(pid_t tid, uint64_t addr, char* buf, size_t cap);

  // Is the tracee's descriptor `rule.tracee_fd` still the same open file as the tracer's? A tracee
  // may have closed it or put something else at that number; then nothing is redirected.
  bool HoldsTargetDir(pid_t tid, const PathRule& rule);

  // The absolute directory a relative path in `tid`'s call is resolved in: its working directory
  // (dirfd AT_FDCWD) or the directory open at `dirfd`. False when there is none a path can name
  // (deleted, a pipe, a descriptor that is not open).
  bool BaseDirectory(pid_t tid, int dirfd, std::string& out);

  // Forget per-thread state (a /proc/TID/mem descriptor) when a thread exits or execs.
  void Forget(pid_t tid);

 private:
  ssize_t Read(pid_t tid, uint64_t addr, char* buf, size_t len);

  bool use_proc_mem_ = false;  // process_vm_readv is missing (gVisor): read /proc/TID/mem instead
  bool use_kcmp_ = true;       // kcmp is missing (gVisor): compare /proc/TID/fd/N's inode instead
  std::unordered_map<pid_t, int> mem_fds_;
};

}  // namespace interceptor

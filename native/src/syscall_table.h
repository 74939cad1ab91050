// Which syscalls take a path the interceptor may redirect, how each one is turned into an *at call
// on a directory descriptor, and the seccomp-bpf filter that stops the tracee on exactly those.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch.h"

namespace interceptor {

// Where a register of the redirected call comes from.
enum class ArgFrom : uint8_t {
  kDir,     // the tracee's descriptor of the rule's target directory
  kSuffix,  // the original path pointer advanced past the matched prefix (points into the tracee's string)
  kOrig,    // the original argument register number `value`
  kConst,   // the constant `value` (flags the old syscall implied)
};

struct NewArg {
  ArgFrom from;
  int64_t value;
};

// `redirect_nr` of a call that has no *at form (truncate): the tracer makes it on the target itself,
// and the tracee's call is skipped with that result.
constexpr long kDoneByTracer = -1;

struct TracedSyscall {
  long nr;
  const char* name;
  int path_arg;      // which argument holds the path
  long redirect_nr;  // the *at syscall it becomes (its own number for *at syscalls), or kDoneByTracer
  int nargs;
  NewArg args[6];
};

// The table for this architecture; index = position, stable for the process lifetime.
const std::vector<TracedSyscall>& TracedSyscalls();

// The entry for `nr`, or nullptr when the syscall is not traced.
const TracedSyscall* FindTraced(long nr);

// The calls by which a process leaves the file system the rules are written for: chroot, pivot_root,
// and setns (which may join another mount namespace, as `runc exec` does). Stopped too, so that the
// tracer can take the rule targets' descriptors away first (session.cc).
bool IsRootChange(long nr);

// ALLOW for everything except the traced syscalls and the root changes of this architecture, which
// return TRACE.
std::vector<sock_filter> BuildSeccompFilter();

// Turn the stopped call into `redirect_nr(dirfd, path + suffix_offset, ...)`. Registers only: the
// tracee's memory is never written.
void ApplyRedirect(const TracedSyscall& sc, Regs& regs, int dir_fd, uint64_t suffix_addr);

}  // namespace interceptor

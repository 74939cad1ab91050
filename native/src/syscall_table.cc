#include "syscall_table.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <iterator>

namespace interceptor {
namespace {

constexpr NewArg D{ArgFrom::kDir, 0};
constexpr NewArg S{ArgFrom::kSuffix, 0};
constexpr NewArg O(int i) { return {ArgFrom::kOrig, i}; }
constexpr NewArg C(int64_t v) { return {ArgFrom::kConst, v}; }

// An *at syscall with (dirfd, path, ...): only the first two registers change.
constexpr TracedSyscall At(long nr, const char* name) { return {nr, name, 1, nr, 6, {D, S, O(2), O(3), O(4), O(5)}}; }

std::vector<TracedSyscall> MakeTable() {
  std::vector<TracedSyscall> t = {
      At(SYS_openat, "openat"),
      At(SYS_newfstatat, "newfstatat"),
      At(SYS_statx, "statx"),
      At(SYS_faccessat, "faccessat"),
      At(SYS_faccessat2, "faccessat2"),
      At(SYS_readlinkat, "readlinkat"),
      At(SYS_openat2, "openat2"),
      At(SYS_fchmodat, "fchmodat"),
      At(SYS_fchownat, "fchownat"),
      At(SYS_mkdirat, "mkdirat"),
      At(SYS_mknodat, "mknodat"),
      At(SYS_unlinkat, "unlinkat"),
      At(SYS_utimensat, "utimensat"),
  };
#if defined(__x86_64__)
  // The old path syscalls, each rewritten into its *at twin with the flags it implied.
  const std::vector<TracedSyscall> legacy = {
      {SYS_open, "open", 0, SYS_openat, 4, {D, S, O(1), O(2)}},
      {SYS_creat, "creat", 0, SYS_openat, 4, {D, S, C(O_CREAT | O_WRONLY | O_TRUNC), O(1)}},
      {SYS_stat, "stat", 0, SYS_newfstatat, 4, {D, S, O(1), C(0)}},
      {SYS_lstat, "lstat", 0, SYS_newfstatat, 4, {D, S, O(1), C(AT_SYMLINK_NOFOLLOW)}},
      {SYS_access, "access", 0, SYS_faccessat, 3, {D, S, O(1)}},
      {SYS_readlink, "readlink", 0, SYS_readlinkat, 4, {D, S, O(1), O(2)}},
      {SYS_chmod, "chmod", 0, SYS_fchmodat, 3, {D, S, O(1)}},
      {SYS_chown, "chown", 0, SYS_fchownat, 5, {D, S, O(1), O(2), C(0)}},
      {SYS_lchown, "lchown", 0, SYS_fchownat, 5, {D, S, O(1), O(2), C(AT_SYMLINK_NOFOLLOW)}},
      {SYS_mkdir, "mkdir", 0, SYS_mkdirat, 3, {D, S, O(1)}},
      {SYS_mknod, "mknod", 0, SYS_mknodat, 4, {D, S, O(1), O(2)}},
      {SYS_unlink, "unlink", 0, SYS_unlinkat, 3, {D, S, C(0)}},
      {SYS_rmdir, "rmdir", 0, SYS_unlinkat, 3, {D, S, C(AT_REMOVEDIR)}},
      // No *at form, so no register-only redirect: the tracer truncates the target for the tracee.
      {SYS_truncate, "truncate", 0, kDoneByTracer, 0, {}},
  };
  t.insert(t.end(), legacy.begin(), legacy.end());
#endif
  return t;
}

constexpr long kLookupSize = 512;  // every traced number is below this on both architectures

constexpr long kRootChanges[] = {SYS_chroot, SYS_pivot_root, SYS_setns};

}  // namespace

const std::vector<TracedSyscall>& TracedSyscalls() {
  static const std::vector<TracedSyscall> table = MakeTable();
  return table;
}

const TracedSyscall* FindTraced(long nr) {
  static const std::array<int16_t, kLookupSize> index = [] {
    std::array<int16_t, kLookupSize> idx;
    idx.fill(-1);
    const auto& t = TracedSyscalls();
    for (size_t i = 0; i < t.size(); i++) idx[t[i].nr] = static_cast<int16_t>(i);
    return idx;
  }();
  if (nr < 0 || nr >= kLookupSize || index[nr] < 0) return nullptr;
  return &TracedSyscalls()[index[nr]];
}

bool IsRootChange(long nr) { return std::find(std::begin(kRootChanges), std::end(kRootChanges), nr) != std::end(kRootChanges); }

std::vector<sock_filter> BuildSeccompFilter() {
  std::vector<long> traced;
  for (const TracedSyscall& sc : TracedSyscalls()) traced.push_back(sc.nr);
  traced.insert(traced.end(), std::begin(kRootChanges), std::end(kRootChanges));
  const auto n = static_cast<uint8_t>(traced.size());
  std::vector<sock_filter> f;
  // Another ABI (i386 via int 0x80) has other numbers: let it run untouched.
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 0, static_cast<uint8_t>(n + 1)));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  for (uint8_t i = 0; i < n; i++) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(traced[i]), static_cast<uint8_t>(n - i), 0));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
  return f;
}

void ApplyRedirect(const TracedSyscall& sc, Regs& regs, int dir_fd, uint64_t suffix_addr) {
  const Regs original = regs;
  if (sc.redirect_nr != sc.nr) SetSyscallNr(regs, sc.redirect_nr);
  for (int i = 0; i < sc.nargs; i++) {
    const NewArg& a = sc.args[i];
    switch (a.from) {
      case ArgFrom::kDir: SetArg(regs, i, static_cast<uint64_t>(dir_fd)); break;
      case ArgFrom::kSuffix: SetArg(regs, i, suffix_addr); break;
      case ArgFrom::kOrig: SetArg(regs, i, Arg(original, static_cast<int>(a.value))); break;
      case ArgFrom::kConst: SetArg(regs, i, static_cast<uint64_t>(a.value)); break;
    }
  }
}

}  // namespace interceptor

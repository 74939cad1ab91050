// The one place that knows a CPU: where a stopped tracee keeps its syscall number, arguments and
// result. x86_64 is what the project runs on; aarch64 compiles from the same table but has not been
// run yet (no arm64 machine in CI).
#pragma once

#include <cerrno>
#include <cstdint>
#include <linux/audit.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>

#if defined(__aarch64__)
#include <elf.h>  // NT_PRSTATUS
#endif

namespace interceptor {

#if defined(__x86_64__)

constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
constexpr bool kCanChangeSyscall = true;  // orig_rax is writable at a seccomp stop

struct Regs {
  user_regs_struct r;
};

inline bool GetRegs(pid_t tid, Regs& regs) { return ptrace(PTRACE_GETREGS, tid, nullptr, &regs.r) == 0; }
inline bool SetRegs(pid_t tid, const Regs& regs) { return ptrace(PTRACE_SETREGS, tid, nullptr, &regs.r) == 0; }

inline long SyscallNr(const Regs& regs) { return static_cast<long>(regs.r.orig_rax); }
inline void SetSyscallNr(Regs& regs, long nr) { regs.r.orig_rax = static_cast<unsigned long long>(nr); }

inline uint64_t Arg(const Regs& regs, int i) {
  switch (i) {
    case 0: return regs.r.rdi;
    case 1: return regs.r.rsi;
    case 2: return regs.r.rdx;
    case 3: return regs.r.r10;
    case 4: return regs.r.r8;
    default: return regs.r.r9;
  }
}

inline void SetArg(Regs& regs, int i, uint64_t v) {
  switch (i) {
    case 0: regs.r.rdi = v; break;
    case 1: regs.r.rsi = v; break;
    case 2: regs.r.rdx = v; break;
    case 3: regs.r.r10 = v; break;
    case 4: regs.r.r8 = v; break;
    default: regs.r.r9 = v; break;
  }
}

// Where PTRACE_GET_SYSCALL_INFO is missing (gVisor, Linux before 5.3), whether the call of a stop has
// run yet: the tracer marks rax at the seccomp stop (the syscall reads its number from orig_rax and
// its arguments elsewhere); an entry stop still shows the mark, an exit stop the call's result, which
// for these calls is an int and never the mark. -ENOSYS is a result like any other.
constexpr uint64_t kNotRunYet = 0x6879627269640000ULL;  // "hybrid\0\0"
inline Regs MarkedNotRun(const Regs& regs) {
  Regs out = regs;
  out.r.rax = kNotRunYet;
  return out;
}
inline bool StillNotRun(const Regs& regs) { return regs.r.rax == kNotRunYet; }

inline int64_t ReturnValue(const Regs& regs) { return static_cast<int64_t>(regs.r.rax); }

// The registers the tracee should see after a redirected call: all of its own, plus the result.
inline Regs WithResult(const Regs& original, int64_t result) {
  Regs out = original;
  out.r.rax = static_cast<unsigned long long>(result);
  return out;
}

// At a seccomp stop: skip the call (number -1) and let it return `result`; nothing else changes.
inline Regs Skipped(const Regs& original, int64_t result) {
  Regs out = WithResult(original, result);
  out.r.orig_rax = static_cast<unsigned long long>(-1LL);
  return out;
}

// At the exit stop of a call made in place of `original` (whose seccomp stop it replaced): back to the
// `syscall` instruction (2 bytes) with the original call, which the tracee then makes again.
inline Regs Restarted(const Regs& original) {
  Regs out = original;
  out.r.rax = original.r.orig_rax;
  out.r.rip -= 2;
  return out;
}

#elif defined(__aarch64__)

constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
constexpr bool kCanChangeSyscall = false;  // needs NT_ARM_SYSTEM_CALL, which this file does not use yet

struct Regs {
  user_regs_struct r;  // glibc's name for the kernel's user_pt_regs: regs[31], sp, pc, pstate
};

inline bool GetRegs(pid_t tid, Regs& regs) {
  iovec iov{&regs.r, sizeof regs.r};
  return ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) == 0;
}
inline bool SetRegs(pid_t tid, const Regs& regs) {
  iovec iov{const_cast<user_regs_struct*>(&regs.r), sizeof regs.r};
  return ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) == 0;
}

inline long SyscallNr(const Regs& regs) { return static_cast<long>(regs.r.regs[8]); }
// arm64 has only the *at syscalls, so a redirect never changes the number (which would need
// NT_ARM_SYSTEM_CALL); the table never asks for it.
inline void SetSyscallNr(Regs&, long) {}

inline uint64_t Arg(const Regs& regs, int i) { return regs.r.regs[i]; }
inline void SetArg(Regs& regs, int i, uint64_t v) { regs.r.regs[i] = v; }

// x0 carries the first argument, so the tracer cannot mark it; the kernel itself reports the
// direction of a syscall stop in x7 (0 at entry, 1 at exit) to the tracer.
inline Regs MarkedNotRun(const Regs& regs) { return regs; }
inline bool StillNotRun(const Regs& regs) { return regs.r.regs[7] == 0; }

inline int64_t ReturnValue(const Regs& regs) { return static_cast<int64_t>(regs.r.regs[0]); }

inline Regs WithResult(const Regs& original, int64_t result) {
  Regs out = original;
  out.r.regs[0] = static_cast<uint64_t>(result);
  return out;
}

// Skipping a call needs NT_ARM_SYSTEM_CALL; arm64's table has no call done by the tracer, so this is
// never reached there.
inline Regs Skipped(const Regs& original, int64_t result) { return WithResult(original, result); }

// Back to the `svc` instruction (4 bytes); x0 to x8 still hold the original call.
inline Regs Restarted(const Regs& original) {
  Regs out = original;
  out.r.pc -= 4;
  return out;
}

#else
#error "the interceptor supports x86_64 and aarch64"
#endif

}  // namespace interceptor

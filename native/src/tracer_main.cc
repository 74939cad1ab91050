// The tracer process. strace and PRoot are processes of their own, and so is this: every ptrace stop
// sends its tracer a SIGCHLD, which in a Node process with a live child_process wakes the main thread
// (libuv's handler). The addon (tracer_client.cc) starts it with the descriptors of wire.h; it runs
// the Session and answers the addon's kill requests on its main thread until no traced process is
// left, or until the addon's end of the control socket closes (Node is gone: exiting ends every
// tracee, PTRACE_O_EXITKILL).
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "session.h"
#include "syscall_table.h"
#include "wire.h"

namespace interceptor {
namespace {

// Terminal signals reach the whole process group; the command gets them itself, and the tracer must
// not die of them (that would SIGKILL the command through EXITKILL). The command's own dispositions
// are reset before its exec.
void IgnoreTerminalSignals() {
  for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE}) signal(sig, SIG_IGN);
}

// Nothing but the descriptors of wire.h, all close-on-exec: the command gets only its stdio and the
// rule targets.
void KeepOnlyOwnDescriptors() {
  if (syscall(SYS_close_range, wire::kCountersFd + 1, ~0U, 0) != 0) {
    for (int fd = wire::kCountersFd + 1; fd < 1024; fd++) close(fd);
  }
  for (int fd = wire::kStdioFd; fd <= wire::kCountersFd; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void SendEvent(const wire::Event& event) { wire::WriteAll(wire::kEventsFd, &event, sizeof event); }

int Run() {
  IgnoreTerminalSignals();
  KeepOnlyOwnDescriptors();
  SpawnSpec spec;
  if (!wire::ReceiveSpec(wire::kControlFd, spec)) return 1;
  for (int i = 0; i < 3; i++) spec.stdio[i] = wire::kStdioFd + i;
  const size_t syscalls = TracedSyscalls().size();
  const size_t bytes = CounterBlock::Bytes(syscalls, spec.rules.size());
  void* shared = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, wire::kCountersFd, 0);
  if (shared == MAP_FAILED) {
    wire::SendStart(wire::kControlFd, -1, {"tracer", errno, ""});
    return 1;
  }
  close(wire::kCountersFd);
  CounterBlock counters(static_cast<Counter*>(shared), syscalls, spec.rules.size());

  Session::Callbacks callbacks;
  callbacks.on_exit = [](const ExitInfo& exit) { SendEvent({wire::EventType::kExit, exit}); };
  callbacks.on_done = [] {
    SendEvent({wire::EventType::kDone, {}});
    _exit(0);
  };
  StartError error;
  std::shared_ptr<Session> session = Session::Start(std::move(spec), std::move(callbacks), counters, error);
  if (!wire::SendStart(wire::kControlFd, session ? session->pid() : -1, error) || !session) return 1;
  for (int i = 0; i < 3; i++) close(wire::kStdioFd + i);  // the command has its own copies now

  wire::Request request;
  while (wire::ReadAll(wire::kControlFd, &request, sizeof request)) {
    wire::Reply reply{0};
    if (request.op == wire::Op::kKill) reply.value = session->Kill(request.signal) ? 1 : 0;
    else if (request.op == wire::Op::kKillAll) reply.value = session->KillAll(request.signal);
    if (!wire::WriteAll(wire::kControlFd, &reply, sizeof reply)) break;
  }
  _exit(0);  // the addon is gone: so are the tracees (EXITKILL)
}

}  // namespace
}  // namespace interceptor

int main() { return interceptor::Run(); }

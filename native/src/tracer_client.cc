#include "tracer_client.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <system_error>
#include <thread>

#include "syscall_table.h"

extern char** environ;

namespace interceptor {
namespace {

// A copy of `fd` numbered above every descriptor the tracer is given (wire.h), so that placing one
// never overwrites the source of another.
int Lifted(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, wire::kCountersFd + 1); }

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace

std::shared_ptr<TracerClient> TracerClient::Start(const std::string& tracer, SpawnSpec spec, OnEvent on_event,
                                                  StartError& error) {
  std::shared_ptr<TracerClient> client(new TracerClient());
  for (const PathRule& rule : spec.rules) client->rule_keys_.push_back(rule.key);
  pid_t pid = -1;
  if (!client->Launch(tracer, spec.stdio, error)) return nullptr;
  if (!wire::SendSpec(client->control_fd_, spec) || !wire::ReceiveStart(client->control_fd_, pid, error)) {
    error = {"tracer", EPIPE, tracer};  // it died before answering
  }
  if (pid <= 0) {
    close(client->control_fd_);
    client->control_fd_ = -1;
    while (waitpid(client->tracer_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (error.stage.empty()) error = {"tracer", 0, tracer};
    return nullptr;
  }
  client->pid_ = pid;
  try {
    // The thread's reference keeps the client, and so the control socket, open until the tracer ends.
    std::thread([client, on_event = std::move(on_event)] { client->ReadEvents(on_event); }).detach();
  } catch (const std::system_error& e) {
    error = {"thread", e.code().value(), ""};
    close(client->control_fd_);  // the tracer ends, and the command with it
    client->control_fd_ = -1;
    while (waitpid(client->tracer_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    return nullptr;
  }
  return client;
}

// posix_spawn, not fork: Node is multi-threaded. The counters live in a memfd both processes map.
bool TracerClient::Launch(const std::string& tracer, const int stdio[3], StartError& error) {
  int control[2] = {-1, -1}, events[2] = {-1, -1};
  const size_t syscalls = TracedSyscalls().size();
  shared_bytes_ = CounterBlock::Bytes(syscalls, rule_keys_.size());
  const int memfd = memfd_create("hybrid-counters", MFD_CLOEXEC);
  void* mapped = MAP_FAILED;
  if (memfd >= 0 && ftruncate(memfd, static_cast<off_t>(shared_bytes_)) == 0) {
    mapped = mmap(nullptr, shared_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  }
  if (mapped == MAP_FAILED) {
    error = {"tracer", errno, tracer};
    CloseAll({memfd});
    return false;
  }
  shared_ = mapped;
  counters_ = CounterBlock(new (shared_) Counter[shared_bytes_ / sizeof(Counter)], syscalls, rule_keys_.size());
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0 || pipe2(events, O_CLOEXEC) != 0) {
    error = {"tracer", errno, tracer};
    CloseAll({memfd, control[0], control[1], events[0], events[1]});
    return false;
  }
  const int sources[] = {Lifted(stdio[0]), Lifted(stdio[1]), Lifted(stdio[2]), Lifted(control[1]), Lifted(events[1]),
                         Lifted(memfd)};
  bool lifted = true;
  for (int fd : sources) lifted = lifted && fd >= 0;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  // The tracer has nothing to say; its own 0, 1, 2 stay taken, so that no rule target lands there.
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < 6; i++) posix_spawn_file_actions_adddup2(&actions, sources[i], wire::kStdioFd + i);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char* argv[] = {const_cast<char*>(tracer.c_str()), nullptr};
  const int spawned = lifted ? posix_spawn(&tracer_pid_, tracer.c_str(), &actions, &attr, argv, environ) : errno;
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  for (int fd : sources) CloseAll({fd});
  CloseAll({memfd, control[1], events[1]});
  control_fd_ = control[0];
  events_fd_ = events[0];
  if (spawned != 0) {
    error = {"tracer", spawned, tracer};
    return false;
  }
  return true;
}

TracerClient::~TracerClient() {
  if (control_fd_ >= 0) close(control_fd_);
  if (events_fd_ >= 0) close(events_fd_);
  if (shared_ != nullptr) munmap(shared_, shared_bytes_);
}

void TracerClient::ReadEvents(OnEvent on_event) {
  bool exited = false;
  wire::Event event;
  while (wire::ReadAll(events_fd_, &event, sizeof event)) {
    if (event.type != wire::EventType::kExit) continue;
    exited = true;
    on_event(event);
  }
  int status;
  while (waitpid(tracer_pid_, &status, 0) < 0 && errno == EINTR) {
  }
  // A tracer that died before the command ended took the command with it (EXITKILL).
  if (!exited) on_event({wire::EventType::kExit, {-1, SIGKILL}});
  on_event({wire::EventType::kDone, {}});
}

int32_t TracerClient::Ask(wire::Op op, int sig) {
  wire::Request request{op, sig};
  wire::Reply reply{0};
  if (!wire::WriteAll(control_fd_, &request, sizeof request) || !wire::ReadAll(control_fd_, &reply, sizeof reply)) {
    return 0;  // the tracer has ended: nothing traced is left to signal
  }
  return reply.value;
}

bool TracerClient::Kill(int sig) { return Ask(wire::Op::kKill, sig) == 1; }

int TracerClient::KillAll(int sig) { return Ask(wire::Op::kKillAll, sig); }

CounterSnapshot TracerClient::Counters() const {
  CounterSnapshot s;
  s.stops = counters_.stops().Get();
  s.signals = counters_.signals().Get();
  s.tracees = counters_.tracees().Get();
  const auto& table = TracedSyscalls();
  for (size_t i = 0; i < table.size(); i++) {
    if (uint64_t n = counters_.syscall(i).Get()) s.syscalls.emplace_back(table[i].name, n);
  }
  for (size_t i = 0; i < rule_keys_.size(); i++) {
    if (uint64_t n = counters_.rewrite(i).Get()) s.rewrites.emplace_back(rule_keys_[i], n);
    if (uint64_t n = counters_.missed(i).Get()) s.missed.emplace_back(rule_keys_[i], n);
  }
  if (uint64_t n = counters_.unreadable().Get()) s.missed.emplace_back(kUnreadableKey, n);
  return s;
}

}  // namespace interceptor

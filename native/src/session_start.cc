// Starting a session: open the rule targets, fork the command on the tracer thread, seize it, and
// let it install the seccomp filter and exec.
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>

#include "child.h"
#include "session.h"
#include "syscall_table.h"

namespace interceptor {
namespace {

constexpr int kPreferredTraceeFd = 1000;  // out of the way of the low numbers programs use

constexpr long kTraceOptions = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
                               PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::shared_ptr<Session> Session::Start(SpawnSpec spec, Callbacks callbacks, CounterBlock counters, StartError& error) {
  std::shared_ptr<Session> session(new Session(std::move(spec), std::move(callbacks), counters));
  std::future<StartError> started = session->started_.get_future();
  try {
    std::thread(&Session::Main, session).detach();  // the thread's copy of `session` keeps it alive
  } catch (const std::system_error& e) {
    error = {"thread", e.code().value(), ""};
    return nullptr;
  }
  error = started.get();
  return error.stage.empty() ? session : nullptr;
}

void Session::Finish(StartError error) {
  starting_ = false;
  started_ok_ = error.stage.empty();
  started_.set_value(std::move(error));
}

void Session::Main() {
  StartError error;
  if (!OpenTargets(error) || !Launch(error)) {
    Finish(std::move(error));
    return;
  }
  Loop();
  if (started_ok_ && callbacks_.on_done) callbacks_.on_done();
}

bool Session::OpenTargets(StartError& error) {
  // One descriptor per distinct target directory, shared by the rules that use it.
  std::map<std::string, size_t> by_dir;
  int highest = std::max({spec_.stdio[0], spec_.stdio[1], spec_.stdio[2]});
  for (PathRule& rule : rules_) {
    auto [it, fresh] = by_dir.emplace(rule.dir, tracer_fds_.size());
    if (fresh) {
      int fd = open(rule.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        error = {"target", errno, rule.dir};
        return false;
      }
      tracer_fds_.push_back(fd);
      highest = std::max(highest, fd);
    }
    rule.tracer_fd = tracer_fds_[it->second];
  }
  // The numbers the command holds them at: above every descriptor the child still needs before exec.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const long count = static_cast<long>(tracer_fds_.size());
  const long floor = highest + 8;  // above what we hold, and the four pipe ends opened next
  long base = std::max<long>(kPreferredTraceeFd, floor);
  if (rl.rlim_cur != RLIM_INFINITY && base + count > static_cast<long>(rl.rlim_cur)) base = static_cast<long>(rl.rlim_cur) - count;
  if (base < floor) {
    error = {"descriptors", EMFILE, ""};
    return false;
  }
  for (PathRule& rule : rules_) {
    const size_t i = by_dir[rule.dir];
    rule.tracee_fd = static_cast<int>(base + static_cast<long>(i));
    struct stat st;
    if (fstat(rule.tracer_fd, &st) != 0) {
      error = {"target", errno, rule.dir};
      return false;
    }
    rule.dev = st.st_dev;
    rule.ino = st.st_ino;
  }
  return true;
}

bool Session::Launch(StartError& error) {
  // Everything the child needs is built now: after fork it must not allocate.
  std::vector<char*> argv = CStrings(spec_.argv);
  std::vector<char*> envp = CStrings(spec_.env);
  std::vector<int> dir_targets(tracer_fds_.size());
  for (const PathRule& rule : rules_) {
    auto at = std::find(tracer_fds_.begin(), tracer_fds_.end(), rule.tracer_fd) - tracer_fds_.begin();
    dir_targets[static_cast<size_t>(at)] = rule.tracee_fd;
  }
  std::vector<sock_filter> filter = BuildSeccompFilter();
  sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};

  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    error = {"fork", errno, ""};
    return false;
  }
  if (pipe2(report, O_CLOEXEC) != 0) {
    error = {"fork", errno, ""};
    close(go[0]);
    close(go[1]);
    return false;
  }
  ChildPlan plan{spec_.file.c_str(), argv.data(), envp.data(), spec_.cwd.empty() ? nullptr : spec_.cwd.c_str(),
                 {spec_.stdio[0], spec_.stdio[1], spec_.stdio[2]}, tracer_fds_.data(), dir_targets.data(),
                 static_cast<int>(tracer_fds_.size()), &prog, go[0], report[1], {go[1], report[0]}};
  pid_t child = fork();
  if (child == 0) RunChild(plan);
  const int fork_errno = errno;
  close(go[0]);
  close(report[1]);
  report_fd_ = report[0];
  if (child < 0) {
    close(go[1]);
    error = {"fork", fork_errno, ""};
    return false;
  }
  if (ptrace(PTRACE_SEIZE, child, nullptr, reinterpret_cast<void*>(kTraceOptions)) != 0) {
    error = {"ptrace", errno, ""};
    close(go[1]);  // the child reads end-of-file and exits
    int status;
    while (waitpid(child, &status, __WALL) < 0 && errno == EINTR) {
    }
    return false;
  }
  pid_ = child;
  AddTracee(child);
  char byte = 1;
  ssize_t written = write(go[1], &byte, 1);
  (void)written;
  close(go[1]);
  return true;
}

}  // namespace interceptor

#include "sanitizers/core/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <system_error>
#include <thread>
#include <string_view>
#include <utility>

extern char** environ;

namespace mugai {
namespace {

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttributes {
 public:
  SpawnAttributes() { posix_spawnattr_init(&attr_); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

// posix_spawn with `actions`, a clean signal state and a process group of
// its own; returns the pid.
pid_t Launch(const std::vector<std::string>& argv, std::vector<std::string> env, FileActions& actions) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& var : env) envp.push_back(var.data());
  envp.push_back(nullptr);

  SpawnAttributes attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(attr.get(), &none);
  posix_spawnattr_setsigdefault(attr.get(), &all);
  posix_spawnattr_setpgroup(attr.get(), 0);
  posix_spawnattr_setflags(attr.get(),
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  if (int rc = posix_spawn(&pid, args[0], actions.get(), attr.get(), args.data(), envp.data()); rc != 0) {
    throw std::system_error(rc, std::generic_category(), "cannot start " + argv[0]);
  }
  return pid;
}

}  // namespace

ChildProcess ChildProcess::Spawn(const std::vector<std::string>& argv, UniqueFd* channel) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  UniqueFd ours(fds[0]), theirs(fds[1]);
  // Our end never blocks: a peer that stops reading, or sends out-of-band
  // data that poll reports and read skips, must not stall a daemon thread
  // past its deadline (frame.cc polls again on EAGAIN).
  if (::fcntl(ours.get(), F_SETFL, O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "fcntl(O_NONBLOCK)");
  }

  // The daemon's environment may hold secrets; the child gets only what the
  // sanitizer runtimes of a test build read.
  std::vector<std::string> kept;
  for (char** e = environ; *e; ++e) {
    std::string_view var = *e;
    if (var.starts_with("ASAN_OPTIONS=") || var.starts_with("UBSAN_OPTIONS=") ||
        var.starts_with("LSAN_OPTIONS=")) {
      kept.emplace_back(var);
    }
  }

  FileActions actions;
  // No terminal input, no output mixed into the daemon's; stderr stays,
  // for the child's log lines.
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(actions.get(), STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  // dup2 onto itself clears FD_CLOEXEC, so fd 3 survives even if it already is 3.
  posix_spawn_file_actions_adddup2(actions.get(), theirs.get(), kChannelFd);
  posix_spawn_file_actions_addclosefrom_np(actions.get(), kChannelFd + 1);
  ChildProcess child;
  child.pid_ = Launch(argv, std::move(kept), actions);
  *channel = std::move(ours);
  return child;
}

ChildProcess ChildProcess::SpawnProgram(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env, const int (&stdio)[3]) {
  FileActions actions;
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_adddup2(actions.get(), stdio[fd], fd);
  posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
  ChildProcess child;
  child.pid_ = Launch(argv, env, actions);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Reap(std::chrono::milliseconds(0));
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() { Reap(std::chrono::milliseconds(0)); }

void ChildProcess::Signal(int signo) const {
  if (pid_ > 0) ::kill(pid_, signo);
}

bool ChildProcess::Exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  pid_ = -1;
  return true;
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  int status = 0;
  if (pid_ <= 0) return status;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return status;
}

int ChildProcess::Reap(std::chrono::milliseconds grace) {
  if (std::optional<int> status = Wait(grace)) return *status;
  int status = 0;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace mugai

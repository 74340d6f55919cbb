#include "sanitizers/core/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <system_error>
#include <utility>

namespace mugai {

ChildProcess ChildProcess::Spawn(const std::vector<std::string>& argv, BeforeExec before_exec) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  UniqueFd ours(fds[0]), theirs(fds[1]);

  // Everything the child needs is prepared before fork: after it, in a
  // multi-threaded parent, only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    int fd = theirs.get();
    if (fd == kChannelFd) {
      ::fcntl(fd, F_SETFD, 0);
    } else if (::dup2(fd, kChannelFd) < 0) {
      ::_exit(127);
    }
    ::close_range(kChannelFd + 1, ~0U, 0);
    if (before_exec) before_exec();
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ChildProcess child;
  child.pid_ = pid;
  child.channel_ = std::move(ours);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), channel_(std::move(other.channel_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillAndWait();
    pid_ = std::exchange(other.pid_, -1);
    channel_ = std::move(other.channel_);
  }
  return *this;
}

ChildProcess::~ChildProcess() { KillAndWait(); }

void ChildProcess::Signal(int signo) const {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::string ChildProcess::KillAndWait() {
  channel_.reset();
  if (pid_ <= 0) return "not running";
  ::kill(pid_, SIGKILL);
  return Wait();
}

std::string ChildProcess::Wait() {
  if (pid_ <= 0) return "not running";
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  channel_.reset();
  return DescribeWaitStatus(status);
}

bool ChildProcess::Exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  pid_ = -1;
  channel_.reset();
  return true;
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

// A child process started with a private channel: one end of a fresh
// AF_UNIX socketpair becomes the child's fd 3; nothing else of ours beyond
// stderr is inherited (stdin and stdout are /dev/null), and of the
// environment only the sanitizer runtimes' options. The child starts with a clean
// signal state (the daemon blocks SIGTERM, SIGHUP and SIGINT for its own
// sigwait) and in its own process group, so a terminal's ^C reaches the
// daemon only, which then stops its children.
//
// Owning: destroying a ChildProcess that has not been reaped kills
// (SIGKILL) and reaps it, so no child outlives its owner unnoticed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sanitizers/core/unique_fd.h"

namespace mugai {

class ChildProcess {
 public:
  // Fd number of the channel inside the child.
  static constexpr int kChannelFd = 3;

  // Starts argv[0] (a path) with `argv`; `*channel` receives our end of the
  // channel. Throws std::system_error.
  static ChildProcess Spawn(const std::vector<std::string>& argv, UniqueFd* channel);

  // Starts a program with no channel, for a worker that runs one of its
  // own: exactly `env` as its environment, `stdio` (which must be open) as
  // its fds 0, 1 and 2, nothing else inherited, in its own process group
  // (group id = its pid, so kill(-pid) reaches whatever it starts in turn,
  // even after it has been reaped). Throws std::system_error.
  static ChildProcess SpawnProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                   const int (&stdio)[3]);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }  // -1 once reaped

  void Signal(int signo) const;

  // Without blocking: true when the child has exited (it is then reaped).
  bool Exited();

  // Waits up to `timeout` for the child to exit; returns its wait status
  // (it is then reaped), or nullopt if it is still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // Waits up to `grace` for the child to exit, then kills it, and reaps it.
  // Returns its wait status (0 when it was already reaped). A child that
  // died by itself keeps its own cause of death.
  int Reap(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
};

// "exited with status N" / "killed by signal N (SIGNAME)" for a wait status.
std::string DescribeWaitStatus(int status);

}  // namespace mugai

// A child process started with a private channel: one end of a fresh
// AF_UNIX socketpair becomes the child's fd 3, every other descriptor of
// ours is closed in the child. Owning: destroying a running ChildProcess
// kills (SIGKILL) and reaps it, so no child outlives its owner unnoticed.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sanitizers/core/unique_fd.h"

namespace mugai {

class ChildProcess {
 public:
  // Fd number of the channel inside the child.
  static constexpr int kChannelFd = 3;

  // Starts argv[0] (a path) with `argv`. `before_exec`, when given, runs in
  // the child between fork and exec and must only make async-signal-safe
  // calls (setrlimit, prctl, ...). Throws std::system_error.
  using BeforeExec = void (*)();
  static ChildProcess Spawn(const std::vector<std::string>& argv, BeforeExec before_exec = nullptr);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int channel() const { return channel_.get(); }

  void Signal(int signo) const;

  // Closes our end of the channel, kills the child and reaps it. Returns how
  // it ended ("exited with status 0", "killed by signal 9"). Idempotent.
  std::string KillAndWait();

  // Reaps the child after it has exited or is about to; returns how it ended.
  std::string Wait();

  // Without blocking: true when the child has exited (it is then reaped).
  bool Exited();

 private:
  pid_t pid_ = -1;
  UniqueFd channel_;
};

// "exited with status N" / "killed by signal N (NAME)" for a waitpid status.
std::string DescribeWaitStatus(int status);

}  // namespace mugai

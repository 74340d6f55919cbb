// mugai-worker: a converter process of the pool. Started by mugaid with the
// job channel on fd 3; never opens the items it converts by path.
#include "sanitizers/core/child_process.h"
#include "sanitizers/core/log.h"
#include "sanitizers/worker/worker_loop.h"

int main() {
  mugai::SetLogProgram("mugai-worker");
  return mugai::RunWorkerLoop(mugai::ChildProcess::kChannelFd, mugai::MakeBuiltinConverter);
}

// The worker process's side of the job channel: read a Job, run the named
// converter, send its records and a final Done; repeat until the daemon
// closes the channel. A converter that throws produces a parse.failed
// finding, never a half-finished job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/worker/converter.h"

namespace mugai {

// Returns the converter for a name, or nullptr for an unknown one.
using ConverterFactory = std::function<std::unique_ptr<Converter>(std::string_view name)>;

// The largest job a worker accepts. The daemon sends far less (its own
// limits); this only bounds what a confused peer could make us allocate.
inline constexpr size_t kWorkerMaxJobBytes = size_t{1} << 30;

// Returns the process exit code: 0 when the daemon closed the channel, 1 on
// a broken channel.
int RunWorkerLoop(int fd, const ConverterFactory& factory);

// The command line every worker executable takes (the pool passes it):
//   WORKER [--no-sandbox] [--memory-bytes N]
struct WorkerFlags {
  bool sandbox = true;
  uint64_t memory_bytes = uint64_t{1} << 30;
};
// nullopt (and a log line) for a command line that is not one.
std::optional<WorkerFlags> ParseWorkerFlags(int argc, char** argv);

// The rest of a worker's life: enters the sandbox (unless flags say not
// to), sends a WorkerHello, then runs the job loop on fd 3. `warm_up` runs
// inside the sandbox's root but before it is locked down (EnterRoot, then
// LockDown: see sanitizers/sandbox/sandbox.h), so converters load their
// tables and modules from the files the policy binds, and may start the
// threads they keep, before seccomp. Returns main()'s exit code.
int ConfineAndServe(const WorkerFlags& flags, const SandboxPolicy& policy, const ConverterFactory& factory,
                    const std::function<void()>& warm_up = {});

}  // namespace mugai

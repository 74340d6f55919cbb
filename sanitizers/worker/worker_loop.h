// The worker process's side of the job channel: read a Job, run the named
// converter, send its records and a final Done; repeat until the daemon
// closes the channel. A converter that throws produces a parse.failed
// finding, never a half-finished job.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

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

// The converters of the production worker (text, html, ...).
std::unique_ptr<Converter> MakeBuiltinConverter(std::string_view name);

// main() of a worker executable:
//   WORKER [--no-sandbox] [--memory-bytes N]
// Warms the converters up (libraries load their tables and modules now,
// while files can still be opened), enters the sandbox, sends a
// WorkerHello, then runs the job loop on fd 3.
int WorkerMain(int argc, char** argv, const ConverterFactory& factory);

}  // namespace mugai

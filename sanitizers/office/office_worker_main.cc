// mugai-office-worker: the pool's Office worker. Same protocol and command
// line as mugai-worker (sanitizers/worker/worker_loop.h), one converter
// ("office"), and a sandbox of its own (OfficePolicy) in which it runs
// LibreOffice once per job. Started by mugaid with the job channel on fd 3.
#include <stdlib.h>

#include <optional>
#include <string>

#include "sanitizers/core/log.h"
#include "sanitizers/office/office_converter.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/worker/worker_loop.h"

namespace {

// Each job's input, PDF and profile (a few MB) in the scratch tmpfs; also
// LibreOffice's largest file (RLIMIT_FSIZE). The daemon sends at most
// WorkerPoolOptions::max_job_bytes (128 MiB by default).
constexpr uint64_t kScratchBytes = uint64_t{1} << 30;

}  // namespace

int main(int argc, char** argv) {
  mugai::SetLogProgram("mugai-office-worker");
  std::optional<mugai::WorkerFlags> flags = mugai::ParseWorkerFlags(argc, argv);
  if (!flags) return 2;
  const mugai::SandboxPolicy policy = mugai::OfficePolicy(flags->memory_bytes, kScratchBytes);
  // Unsandboxed (only to measure the sandbox's cost) there is no scratch
  // tmpfs; each job's directory is then private to it under TMPDIR.
  const char* tmpdir = getenv("TMPDIR");
  const std::string scratch = flags->sandbox ? policy.scratch_dir : (tmpdir && *tmpdir ? tmpdir : "/tmp");
  // Nothing to warm up: LibreOffice is a program of its own, started per job.
  return mugai::ConfineAndServe(*flags, policy,
                                [&scratch](std::string_view name) -> std::unique_ptr<mugai::Converter> {
                                  if (name != "office") return nullptr;
                                  return std::make_unique<mugai::OfficeConverter>(scratch);
                                });
}

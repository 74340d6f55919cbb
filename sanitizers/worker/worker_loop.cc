#include "sanitizers/worker/worker_loop.h"

#include <exception>
#include <functional>
#include <string>

#include <cstdlib>
#include <utility>

#include "sanitizers/core/child_process.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/worker/frame.h"

namespace mugai {
namespace {

// Writes every record straight to the channel, stamped with the job id.
class ChannelSink : public RecordSink {
 public:
  ChannelSink(int fd, uint64_t job_id) : fd_(fd), job_id_(job_id) {}

  void Emit(v1::worker::Record record) override {
    record.set_job_id(job_id_);
    if (WriteFrame(fd_, record) != FrameStatus::kOk) broken_ = true;
  }

  bool broken() const { return broken_; }

 private:
  int fd_;
  uint64_t job_id_;
  bool broken_ = false;
};

}  // namespace

int RunWorkerLoop(int fd, const ConverterFactory& factory) {
  for (;;) {
    v1::worker::Job job;
    FrameStatus status = ReadFrame(fd, kWorkerMaxJobBytes, NoDeadline(), &job);
    if (status == FrameStatus::kEof) return 0;
    if (status != FrameStatus::kOk) return 1;

    ChannelSink sink(fd, job.id());
    if (std::unique_ptr<Converter> converter = factory(job.converter())) {
      ConvertInput input{job.name(), job.content(), job.max_output_bytes(), job.render(),
                         std::chrono::milliseconds(job.time_limit_ms()), job.archive(), job.mail()};
      try {
        converter->Convert(input, sink);
      } catch (const std::bad_alloc&) {
        sink.Finding(finding::kLimitMemory, "the converter ran out of its memory limit");
      } catch (const std::exception& e) {
        sink.Finding(finding::kParseFailed, e.what());
      }
    } else {
      sink.Finding(finding::kParseFailed, "no converter named \"" + job.converter() + "\"");
    }
    v1::worker::Record done;
    done.mutable_done();
    sink.Emit(std::move(done));
    if (sink.broken()) return 1;
  }
}

std::optional<WorkerFlags> ParseWorkerFlags(int argc, char** argv) {
  WorkerFlags flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--no-sandbox") {
      flags.sandbox = false;
    } else if (arg == "--memory-bytes" && i + 1 < argc) {
      flags.memory_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else {
      LogError("unknown argument " + std::string(arg));
      return std::nullopt;
    }
  }
  return flags;
}

int ConfineAndServe(const WorkerFlags& flags, const SandboxPolicy& policy, const ConverterFactory& factory,
                    const std::function<void()>& warm_up) {
  v1::worker::WorkerHello hello;
  if (!flags.sandbox) {
    if (warm_up) warm_up();
    hello.add_missing("sandbox disabled (--no-sandbox)");
  } else {
    RootedSandbox rooted = EnterRoot(policy);
    if (warm_up) warm_up();
    SandboxReport report = LockDown(std::move(rooted));
    for (std::string& p : report.active) hello.add_protections(std::move(p));
    for (std::string& m : report.missing) hello.add_missing(std::move(m));
  }
  if (WriteFrame(ChildProcess::kChannelFd, hello) != FrameStatus::kOk) return 1;
  return RunWorkerLoop(ChildProcess::kChannelFd, factory);
}

}  // namespace mugai

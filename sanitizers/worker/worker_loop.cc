#include "sanitizers/worker/worker_loop.h"

#include <exception>
#include <string>

#include "sanitizers/core/findings.h"
#include "sanitizers/html/html_converter.h"
#include "sanitizers/text/text_converter.h"
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

std::unique_ptr<Converter> MakeBuiltinConverter(std::string_view name) {
  if (name == "text") return std::make_unique<TextConverter>();
  if (name == "html") return std::make_unique<HtmlConverter>();
  return nullptr;
}

int RunWorkerLoop(int fd, const ConverterFactory& factory) {
  for (;;) {
    v1::worker::Job job;
    FrameStatus status = ReadFrame(fd, kWorkerMaxJobBytes, NoDeadline(), &job);
    if (status == FrameStatus::kEof) return 0;
    if (status != FrameStatus::kOk) return 1;

    ChannelSink sink(fd, job.id());
    if (std::unique_ptr<Converter> converter = factory(job.converter())) {
      ConvertInput input{job.name(), job.content(), job.max_output_bytes()};
      try {
        converter->Convert(input, sink);
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

}  // namespace mugai

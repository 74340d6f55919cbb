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
#include "sanitizers/html/html_converter.h"
#include "sanitizers/image/image_converter.h"
#include "sanitizers/pdf/pdf_converter.h"
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
  if (name == "pdf") return std::make_unique<PdfConverter>();
  if (name == "image") return std::make_unique<ImageConverter>();
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
      ConvertInput input{job.name(), job.content(), job.max_output_bytes(), job.render(),
                         std::chrono::milliseconds(job.time_limit_ms())};
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

int WorkerMain(int argc, char** argv, const ConverterFactory& factory) {
  SetLogProgram("mugai-worker");
  std::optional<WorkerFlags> flags = ParseWorkerFlags(argc, argv);
  if (!flags) return 2;
  // Japanese text in the charsets iconv loads on demand, and HTML.
  static constexpr std::pair<const char*, std::string_view> kWarmUp[] = {
      {"text", "\x93\xfa\x96\x7b\x8c\xea"}, {"text", "\xc6\xfc\xcb\xdc"},
      {"text", "\x1b$BF|K\\\x1b(B"}, {"html", "<p>a</p>"},
      // A page with a font to look up: fontconfig reads its configuration now.
      {"pdf", "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n4 0 obj<</Length 31>>stream\nBT /F1 12 Tf 10 10 Td (a) Tj ET\nendstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"}};
  auto warm_up = [&](std::string_view name, std::string_view sample) {
    struct Discard : RecordSink {
      void Emit(v1::worker::Record) override {}
    } discard;
    if (std::unique_ptr<Converter> converter = factory(name)) {
      try {
        converter->Convert({"warm-up", sample, 1 << 20}, discard);
      } catch (const std::exception&) {
      }
    }
  };
  return ConfineAndServe(*flags, ConverterPolicy(flags->memory_bytes), factory, [&] {
    for (const auto& [name, sample] : kWarmUp) warm_up(name, sample);
    // Every image format, built in memory by libvips itself.
    for (const std::string& sample : ImageWarmUpSamples()) warm_up("image", sample);
  });
}

}  // namespace mugai

// The one interface every format converter implements. Converters run only
// inside worker processes, on untrusted bytes, and produce only primitive
// records (text, pixels, children, findings) through a RecordSink. They never
// write files and never decide the outcome: the daemon validates the records
// and writes every derivative itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mugai/v1/worker.pb.h"

namespace mugai {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void Emit(v1::worker::Record record) = 0;

  void Text(std::string utf8);
  // `subject`: the child the finding is about (WorkerFinding.subject).
  void Finding(std::string_view code, std::string reason, std::string_view subject = {});
  void Child(std::string name, std::string content);
  // A mail attachment: `declared_type` is the Content-Type its sender gave
  // ("" for none); `shown_inline` when the body shows it (Child.shown_inline).
  void Child(std::string name, std::string content, std::string declared_type, bool shown_inline);
  void MailHeader(v1::worker::MailHeader header);
};

// A Pixels record of the given size, its data allocated (zeroed) for the
// converter to fill: width * height * channels bytes, row-major.
v1::worker::Record PixelsRecord(uint32_t width, uint32_t height, uint32_t channels);

struct ConvertInput {
  std::string_view name;     // claimed name (untrusted, informational)
  std::string_view content;  // the untrusted bytes
  uint64_t max_output_bytes;  // converters stop producing text past this
  v1::worker::RenderOptions render = {};  // for converters that render
  std::chrono::milliseconds time_limit{0};  // 0: none beyond the daemon's deadline
  v1::worker::ArchiveOptions archive = {};  // for the archive converter
  v1::worker::MailOptions mail = {};        // for the mail converter
};

class Converter {
 public:
  virtual ~Converter() = default;
  // Converts `input`, emitting records into `sink`. Throws ConvertError when
  // the input cannot be parsed; the worker reports that as parse.failed.
  virtual void Convert(const ConvertInput& input, RecordSink& sink) = 0;
};

class ConvertError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mugai

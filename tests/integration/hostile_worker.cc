// mugai-hostile-worker: a worker built only for tests. It behaves like
// mugai-worker, except that text whose first line is a "MUGAI-TEST:" command
// makes it misbehave the way a compromised or broken parser would.
#include <signal.h>
#include <unistd.h>

#include <string>

#include "sanitizers/core/child_process.h"
#include "sanitizers/worker/frame.h"
#include "sanitizers/worker/worker_loop.h"

namespace mugai {
namespace {

class HostileConverter : public Converter {
 public:
  explicit HostileConverter(std::unique_ptr<Converter> honest) : honest_(std::move(honest)) {}

  void Convert(const ConvertInput& input, RecordSink& sink) override {
    std::string_view content = input.content;
    std::string_view command = content.substr(0, content.find('\n'));
    const int fd = ChildProcess::kChannelFd;
    if (command == "MUGAI-TEST:die-mid-record") {
      // Announce 1000 bytes, send 10, die.
      const char partial[] = "\xe8\x03\x00\x00" "0123456789";
      [[maybe_unused]] ssize_t n = ::write(fd, partial, sizeof partial - 1);
      ::raise(SIGKILL);
    } else if (command == "MUGAI-TEST:hang") {
      for (;;) ::pause();
    } else if (command == "MUGAI-TEST:slow") {
      ::sleep(2);
      honest_->Convert(input, sink);
    } else if (command == "MUGAI-TEST:garbage") {
      const char garbage[] = "\x10\x00\x00\x00" "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
      [[maybe_unused]] ssize_t n = ::write(fd, garbage, sizeof garbage - 1);
      for (;;) ::pause();
    } else if (command == "MUGAI-TEST:bad-utf8") {
      sink.Text("caf\xc3 \xed\xa0\x80");
    } else if (command == "MUGAI-TEST:huge-page") {
      v1::worker::Record record;
      v1::worker::Pixels* pixels = record.mutable_pixels();
      pixels->set_width(100000);
      pixels->set_height(100000);
      pixels->set_channels(3);
      pixels->set_data(std::string(16, '\0'));
      sink.Emit(std::move(record));
    } else {
      honest_->Convert(input, sink);
    }
  }

 private:
  std::unique_ptr<Converter> honest_;
};

std::unique_ptr<Converter> MakeHostileConverter(std::string_view name) {
  std::unique_ptr<Converter> honest = MakeBuiltinConverter(name);
  if (!honest) return nullptr;
  return std::make_unique<HostileConverter>(std::move(honest));
}

}  // namespace
}  // namespace mugai

int main() {
  return mugai::RunWorkerLoop(mugai::ChildProcess::kChannelFd, mugai::MakeHostileConverter);
}

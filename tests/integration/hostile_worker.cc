// mugai-hostile-worker: a worker built only for tests. It behaves like
// mugai-worker, except that text whose first line is a "MUGAI-TEST:" command
// makes it misbehave the way a compromised or broken parser would.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sanitizers/core/child_process.h"
#include "sanitizers/core/log.h"
#include "sanitizers/worker/frame.h"
#include "sanitizers/worker/builtin_worker.h"

namespace mugai {
namespace {

// Sends the file's contents as text if it can be read at all.
void Steal(const std::string& path, RecordSink& sink) {
  int f = ::open(path.c_str(), O_RDONLY);
  if (f < 0) {
    sink.Finding("parse.failed", "open " + path + ": " + strerror(errno));
    return;
  }
  std::string loot(65536, '\0');
  ssize_t n = ::read(f, loot.data(), loot.size());
  ::close(f);
  loot.resize(n > 0 ? static_cast<size_t>(n) : 0);
  sink.Text("stolen: " + loot);
}

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
    } else if (command == "MUGAI-TEST:log") {
      // stderr is the daemon's log file here, and RLIMIT_FSIZE is 0.
      LogWarn("a log line from inside the sandbox");
      honest_->Convert(input, sink);
    } else if (command == "MUGAI-TEST:slow") {
      ::sleep(2);
      honest_->Convert(input, sink);
    } else if (command == "MUGAI-TEST:garbage") {
      const char garbage[] = "\x10\x00\x00\x00" "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
      [[maybe_unused]] ssize_t n = ::write(fd, garbage, sizeof garbage - 1);
      for (;;) ::pause();
    } else if (command == "MUGAI-TEST:open") {
      // The path to steal is on the second line.
      std::string path(content.substr(command.size() + 1));
      path = path.substr(0, path.find('\n'));
      Steal(path, sink);
    } else if (command == "MUGAI-TEST:connect") {
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(9);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
        sink.Text("connected to 127.0.0.1");
      } else {
        sink.Finding("parse.failed", std::string("connect: ") + strerror(errno));
      }
    } else if (command == "MUGAI-TEST:fork-bomb") {
      for (;;) {
        if (::fork() < 0) sink.Finding("parse.failed", std::string("fork: ") + strerror(errno));
      }
    } else if (command == "MUGAI-TEST:allocate") {
      std::vector<std::string> hoard;
      for (;;) hoard.emplace_back(64u << 20, 'x');
    } else if (command == "MUGAI-TEST:spin") {
      for (;;) asm volatile("" ::: "memory");
    } else if (command == "MUGAI-TEST:oversized-record") {
      const char header[] = "\xff\xff\xff\x7f";
      [[maybe_unused]] ssize_t n = ::write(fd, header, 4);
      for (;;) ::pause();
    } else if (command == "MUGAI-TEST:out-of-band") {
      // poll() on the daemon's end reports it, read() skips it.
      [[maybe_unused]] ssize_t n = ::send(fd, "!", 1, MSG_OOB);
      for (;;) ::pause();
    } else if (command == "MUGAI-TEST:signal-others") {
      // Ask the kernel to SIGKILL process 1 whenever the channel has data.
      ::fcntl(fd, F_SETOWN, 1);
      ::fcntl(fd, F_SETSIG, SIGKILL);
      sink.Finding("parse.failed", "F_SETOWN was allowed");
    } else if (command == "MUGAI-TEST:limit-others") {
      rlimit none{0, 0};
      ::prlimit(1, RLIMIT_NOFILE, &none, nullptr);
      sink.Finding("parse.failed", std::string("prlimit(1): ") + strerror(errno));
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
    } else if (command == "MUGAI-TEST:many-pages") {
      // Well-formed pages, as many as it likes, whatever the job's limits.
      for (int i = 0; i < 5; ++i) {
        v1::worker::Record record;
        v1::worker::Pixels* pixels = record.mutable_pixels();
        pixels->set_width(10);
        pixels->set_height(10);
        pixels->set_channels(3);
        pixels->set_data(std::string(300, '\x80'));
        sink.Emit(std::move(record));
      }
    } else if (input.archive.max_members() != 0 && content.find("MUGAI-TEST:overspend") != std::string_view::npos) {
      // An archive worker that ignores the budget it was given.
      for (int i = 0; i < 4; ++i) sink.Child("m" + std::to_string(i) + ".txt", "x\n");
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

int main(int argc, char** argv) { return mugai::WorkerMain(argc, argv, mugai::MakeHostileConverter); }

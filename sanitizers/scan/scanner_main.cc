// mugai-scanner: the one process that holds a libclamav engine.
//
//   mugai-scanner --signatures DIR --threads N --reload-check SECONDS --max-bytes N
//
// It talks to the daemon on fd 3 (one end of a socketpair): ScanRequest
// frames in, ScannerMessage frames out, an EngineInfo after the first load
// and after every reload attempt and a ScanResult (same id) per request, in
// completion order. One thread reads requests into a queue, N threads scan,
// and the main thread reloads the signatures on SIGHUP or when the directory
// changes (checked every SECONDS, 0 = only on SIGHUP). A reload builds the
// new engine completely before swapping it in, so no scan waits for it or
// fails because of it; scans in flight finish on the engine they started
// with. EOF on fd 3 means the daemon is gone: the scanner exits.
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mugai/v1/worker.pb.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"
#include "sanitizers/detect/type_detector.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/scan/clam_engine.h"
#include "sanitizers/worker/frame.h"

namespace mugai {
namespace {

using v1::worker::EngineInfo;
using v1::worker::ScannerMessage;
using v1::worker::ScanRequest;
using v1::worker::ScanResult;

constexpr int kChannelFd = 3;
// Room for a ScanRequest's id and field headers around the content.
constexpr size_t kRequestOverhead = 64;

constexpr char kUsage[] =
    "usage: mugai-scanner --signatures DIR --threads N --reload-check SECONDS --max-bytes N\n"
    "  (fd 3 must be the channel to the daemon; --reload-check 0 reloads only on SIGHUP)\n";

struct Flags {
  std::string signatures;
  unsigned threads = 0;
  std::optional<unsigned> reload_check_seconds;
  uint64_t max_bytes = 0;
};

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::optional<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 == argc) return std::nullopt;
    std::string_view name = argv[i], value = argv[i + 1];
    unsigned seconds = 0;
    if (name == "--signatures") {
      flags.signatures = value;
    } else if (name == "--threads" && ParseNumber(value, &flags.threads)) {
    } else if (name == "--reload-check" && ParseNumber(value, &seconds)) {
      flags.reload_check_seconds = seconds;
    } else if (name == "--max-bytes" && ParseNumber(value, &flags.max_bytes)) {
    } else {
      return std::nullopt;
    }
  }
  if (flags.signatures.empty() || flags.threads == 0 || !flags.reload_check_seconds ||
      flags.max_bytes == 0) {
    return std::nullopt;
  }
  return flags;
}

// Requests waiting for a scan thread. Once closed (the daemon is gone),
// queued requests are dropped: nobody is left to read their results.
class RequestQueue {
 public:
  void Push(ScanRequest request) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(request));
    }
    cv_.notify_one();
  }

  std::optional<ScanRequest> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
    if (closed_) return std::nullopt;
    ScanRequest request = std::move(queue_.front());
    queue_.pop_front();
    return request;
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ScanRequest> queue_;
  bool closed_ = false;
};

// The engine in use. Scans take a reference and keep it for the whole scan;
// a reload swaps in a new one, and the old one is freed by whoever drops the
// last reference, outside the lock. (A mutex rather than
// std::atomic<std::shared_ptr>: GCC 12's version releases its internal lock
// with relaxed order, which ThreadSanitizer reports as a race.)
class EngineSlot {
 public:
  std::shared_ptr<const ClamEngine> Get() const {
    std::lock_guard lock(mu_);
    return engine_;
  }

  void Set(std::shared_ptr<const ClamEngine> engine) {
    std::lock_guard lock(mu_);
    engine_.swap(engine);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ClamEngine> engine_;
};

EngineInfo Describe(const ClamEngine& engine) {
  EngineInfo info;
  info.set_directory(engine.directory());
  info.set_signature_count(engine.signature_count());
  info.set_test_signatures_only(engine.test_signatures_only());
  return info;
}

class Scanner {
 public:
  Scanner(Flags flags, UniqueFd signals) : flags_(std::move(flags)), signals_(std::move(signals)) {}

  int Run() {
    if (!stop_.valid()) {
      LogError(ErrnoText("eventfd"));
      return 1;
    }
    std::vector<std::unique_ptr<TypeDetector>> detectors;
    std::string error;
    try {
      for (unsigned i = 0; i < flags_.threads; ++i) {
        detectors.push_back(std::make_unique<TypeDetector>());
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::shared_ptr<const ClamEngine> engine = error.empty() ? Load(&error) : nullptr;
    if (!engine) {
      EngineInfo info;
      info.set_directory(flags_.signatures);
      info.set_error(error);
      SendEngine(info);
      return 1;
    }
    engine_.Set(engine);
    engine.reset();
    // Confined before the first thread starts (a threaded process cannot
    // enter a user namespace) and before the first request is read.
    sandbox_ = EnterSandbox(ScannerPolicy(flags_.signatures, flags_.max_bytes));
    // libclamav's temporary files go to the scratch tmpfs.
    ::setenv("TMPDIR", kScratchDir, 1);
    SendEngine(Describe(*engine_.Get()));

    std::thread reader(&Scanner::ReadRequests, this);
    std::vector<std::thread> scanners;
    for (auto& detector : detectors) {
      scanners.emplace_back(&Scanner::ScanRequests, this, detector.get());
    }
    WatchForReloads();
    reader.join();
    for (std::thread& t : scanners) t.join();
    LogInfo("channel closed, exiting");
    return 0;
  }

 private:
  // Builds an engine from the signature directory; null (and `error`) on
  // failure. The directory's state is recorded first, so a change made while
  // loading still triggers the next reload.
  std::shared_ptr<const ClamEngine> Load(std::string* error) {
    try {
      watch_.emplace(flags_.signatures);
    } catch (const std::exception& e) {
      watch_.reset();
      LogWarn(e.what());
    }
    try {
      auto engine = std::make_shared<const ClamEngine>(flags_.signatures, flags_.max_bytes);
      LogInfo("loaded " + std::to_string(engine->signature_count()) + " signatures from " +
              engine->directory());
      if (engine->test_signatures_only()) {
        LogWarn("******** TEST SIGNATURES ONLY: no official ClamAV database (main/daily) in " +
                engine->directory() + " -- real malware will NOT be detected ********");
      }
      return engine;
    } catch (const std::exception& e) {
      *error = e.what();
      LogError(std::string("cannot load signatures: ") + e.what());
      return nullptr;
    }
  }

  void Reload(const char* why) {
    LogInfo(std::string("reloading signatures (") + why + ")");
    std::string error;
    if (std::shared_ptr<const ClamEngine> engine = Load(&error)) {
      engine_.Set(engine);
      SendEngine(Describe(*engine));
    } else {
      LogWarn("reload failed, keeping the previous engine");
      EngineInfo info = Describe(*engine_.Get());
      info.set_error(error);
      SendEngine(info);
    }
  }

  // Main thread: waits for SIGHUP, the next directory check, or the reader's
  // signal that the channel closed.
  void WatchForReloads() {
    const auto period = std::chrono::seconds(*flags_.reload_check_seconds);
    Deadline next_check = period.count() ? Clock::now() + period : NoDeadline();
    for (;;) {
      pollfd fds[2] = {{signals_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      int timeout = -1;
      if (next_check != NoDeadline()) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(next_check - Clock::now());
        timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
      }
      int n = ::poll(fds, 2, timeout);
      if (n < 0 && errno != EINTR) {
        LogError(ErrnoText("poll"));
        return;
      }
      if (fds[1].revents) return;
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo info;
        if (::read(signals_.get(), &info, sizeof info) == sizeof info) Reload("SIGHUP");
      }
      if (next_check != NoDeadline() && Clock::now() >= next_check) {
        if (!watch_ || watch_->Changed()) Reload("signature directory changed");
        next_check = Clock::now() + period;
      }
    }
  }

  void ReadRequests() {
    for (;;) {
      ScanRequest request;
      FrameStatus status =
          ReadFrame(kChannelFd, flags_.max_bytes + kRequestOverhead, NoDeadline(), &request);
      if (status != FrameStatus::kOk) {
        // Anything but a clean EOF leaves the stream unusable; the daemon
        // sees the channel close and restarts us.
        if (status != FrameStatus::kEof) {
          LogError(std::string("channel: ") + FrameStatusName(status));
        }
        break;
      }
      queue_.Push(std::move(request));
    }
    queue_.Close();
    uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = ::write(stop_.get(), &one, sizeof one);
  }

  void ScanRequests(TypeDetector* detector) {
    while (std::optional<ScanRequest> request = queue_.Pop()) {
      ScannerMessage message;
      ScanResult* result = message.mutable_result();
      result->set_id(request->id());
      DetectedType type = detector->Detect(request->content());
      result->set_mime_type(std::move(type.mime_type));
      result->set_description(std::move(type.description));
      ClamVerdict verdict = engine_.Get()->Scan(request->content());
      switch (verdict.kind) {
        case ClamVerdict::kClean:
          result->set_verdict(ScanResult::CLEAN);
          break;
        case ClamVerdict::kDetected:
          result->set_verdict(ScanResult::DETECTED);
          result->set_signature(verdict.signature);
          result->set_location(verdict.location);
          break;
        case ClamVerdict::kError:
          result->set_verdict(ScanResult::ERROR);
          result->set_error(verdict.error);
          break;
      }
      Send(message);
    }
  }

  void SendEngine(const EngineInfo& info) {
    ScannerMessage message;
    *message.mutable_engine() = info;
    for (const std::string& p : sandbox_.active) message.mutable_engine()->add_protections(p);
    for (const std::string& m : sandbox_.missing) message.mutable_engine()->add_missing(m);
    Send(message);
  }

  // A failed write means the daemon is gone; the reader sees EOF and stops us.
  void Send(const ScannerMessage& message) {
    std::lock_guard lock(write_mu_);
    WriteFrame(kChannelFd, message);
  }

  const Flags flags_;
  const UniqueFd signals_;
  const UniqueFd stop_{::eventfd(0, EFD_CLOEXEC)};
  EngineSlot engine_;
  std::optional<SignatureDirectoryWatch> watch_;  // main thread only
  RequestQueue queue_;
  std::mutex write_mu_;
  SandboxReport sandbox_;  // written before the threads start
};

}  // namespace
}  // namespace mugai

int main(int argc, char** argv) {
  using namespace mugai;
  SetLogProgram("mugai-scanner");
  // SIGHUP is taken from a signalfd by the main thread; blocking it before
  // any thread exists makes every thread inherit the mask, and a SIGHUP
  // during the first load waits instead of killing us.
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
  UniqueFd signals(::signalfd(-1, &hup, SFD_CLOEXEC));

  std::optional<Flags> flags = ParseFlags(argc, argv);
  if (!flags) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (!signals.valid()) {
    LogError(ErrnoText("signalfd"));
    return 1;
  }
  return Scanner(std::move(*flags), std::move(signals)).Run();
}

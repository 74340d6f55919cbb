#include "sanitizers/scan/scanner_client.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sanitizers/core/child_process.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"
#include "sanitizers/scan/official_database.h"

namespace mugai {
namespace {

using namespace std::chrono_literals;
using v1::worker::EngineInfo;
using v1::worker::ScannerMessage;
using v1::worker::ScanRequest;
using v1::worker::ScanResult;

// Scanner messages are a few short strings; anything bigger is a broken peer.
constexpr size_t kMaxMessageBytes = 1 << 20;
// How long a scanner may take to exit after its channel closes.
constexpr auto kExitGrace = 2s;
// Restarts after quick deaths back off from kMinRestartDelay to
// kMaxRestartDelay; a scanner that lived kStableLifetime resets the delay.
constexpr auto kMinRestartDelay = 100ms;
constexpr auto kMaxRestartDelay = 5s;
constexpr auto kStableLifetime = 30s;
// A scanner silent this long while a scan waits on it is taken for stuck.
constexpr auto kStuckAfter = 5s;

constexpr char kDied[] = "scanner process died";
constexpr char kTimedOut[] = "scan timed out";

ScanVerdict Failed(std::string error) {
  ScanVerdict verdict;
  verdict.error = std::move(error);
  return verdict;
}

std::vector<std::string> ScannerArguments(const ScannerOptions& options) {
  // clang-format off
  return {
      options.executable,
      "--signatures", options.signatures_dir,
      "--threads", std::to_string(options.threads),
      "--reload-check", std::to_string(options.reload_check.count()),
      "--max-bytes", std::to_string(options.max_scan_bytes)};
  // clang-format on
}

}  // namespace

std::string DefaultSignatureDirectory() {
  constexpr char kSystem[] = "/var/lib/clamav";
  return HoldsOfficialDatabase(kSystem) ? kSystem : MUGAI_SAMPLE_SIGNATURES_DIR;
}

class ScannerClient::Impl {
 public:
  explicit Impl(ScannerOptions options) : options_(std::move(options)) {}

  ~Impl() {
    std::shared_ptr<Channel> channel;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      channel = std::move(channel_);
    }
    cv_.notify_all();
  }

  void Start(Deadline deadline) {
    std::shared_ptr<Channel> channel;
    std::string error;
    {
      std::unique_lock lock(mu_);
      if (started_) throw std::logic_error("ScannerClient::Start called twice");
      channel_ = Spawn();
      started_ = true;
      channel = channel_;
      bool settled =
          cv_.wait_until(lock, deadline, [&] { return channel->announced || channel->dead; });
      if (channel->announced && channel->load_error.empty()) return;
      error = !settled             ? "timed out waiting for the scanner to load signatures"
              : channel->announced ? "scanner cannot load signatures from " +
                                         options_.signatures_dir + ": " + channel->load_error
                                   : "scanner exited before loading signatures";
      started_ = false;
      channel_.reset();
    }
    throw std::runtime_error(error);
  }

  ScanVerdict Scan(std::string_view content, Deadline deadline) {
    if (content.size() > options_.max_scan_bytes) {
      return Failed("content of " + std::to_string(content.size()) +
                    " bytes exceeds the scan limit of " + std::to_string(options_.max_scan_bytes));
    }
    if (Clock::now() >= deadline) return Failed(kTimedOut);
    std::shared_ptr<Channel> channel;
    uint64_t id = 0;
    std::future<ScanVerdict> result;
    {
      std::unique_lock lock(mu_);
      std::string error;
      channel = LiveChannel(lock, deadline, &error);
      if (!channel) return Failed(error);
      id = next_id_++;
      Pending& pending = pending_[id];
      pending.generation = channel->generation;
      result = pending.promise.get_future();
    }
    ScanRequest request;
    request.set_id(id);
    request.set_content(std::string(content));
    FrameStatus sent = FrameStatus::kTimeout;  // also when other writers hold the channel
    if (channel->write_mu.try_lock_until(deadline)) {
      std::lock_guard write_lock(channel->write_mu, std::adopt_lock);
      sent = WriteFrame(channel->socket.get(), request, deadline);
      // A failed write may have cut a frame short, which leaves the stream
      // unusable.
      if (sent != FrameStatus::kOk) {
        return GiveUp(*channel, id, &result, sent == FrameStatus::kIoError ? kDied : kTimedOut,
                      Retire::kYes);
      }
    }
    if (sent != FrameStatus::kOk) return GiveUp(*channel, id, &result, kTimedOut, Retire::kNo);
    const Clock::time_point sent_at = Clock::now();
    if (result.wait_until(deadline) == std::future_status::ready) return result.get();
    return GiveUp(*channel, id, &result, kTimedOut, Retire::kIfStuck, sent_at);
  }

  EngineInfo engine() const {
    std::lock_guard lock(mu_);
    return engine_;
  }

  void Reload() {
    std::lock_guard lock(mu_);
    // The child is reaped only after `dead` is set, so the pid is still ours.
    if (channel_ && !channel_->dead) channel_->child.Signal(SIGHUP);
  }

  pid_t scanner_pid() const {
    std::lock_guard lock(mu_);
    return channel_ && !channel_->dead ? channel_->child.pid() : -1;
  }

 private:
  // One scanner process and the socket to it. Fields below `reader` are
  // guarded by Impl::mu_.
  struct Channel {
    Channel(UniqueFd socket, ChildProcess child, uint64_t generation)
        : socket(std::move(socket)), child(std::move(child)), generation(generation) {}
    // Waking the reader with shutdown (not close: it is polling the fd) ends
    // it; it reaps the child before it returns.
    ~Channel() {
      ::shutdown(socket.get(), SHUT_RDWR);
      if (reader.joinable()) reader.join();
    }

    const UniqueFd socket;
    ChildProcess child;
    const uint64_t generation;
    const Clock::time_point started = Clock::now();
    std::timed_mutex write_mu;  // one frame at a time
    std::thread reader;

    Clock::time_point last_heard = started;  // the last message
    bool announced = false;                  // the first EngineInfo arrived
    std::string load_error;                  // its error, if any
    bool dead = false;                       // retired, or EOF or error on the socket
  };

  struct Pending {
    uint64_t generation = 0;
    std::promise<ScanVerdict> promise;
  };

  // Requires mu_. Spawns a scanner and its reader thread.
  std::shared_ptr<Channel> Spawn() {
    UniqueFd socket;
    ChildProcess child = ChildProcess::Spawn(ScannerArguments(options_), &socket);
    auto channel = std::make_shared<Channel>(std::move(socket), std::move(child), ++generation_);
    channel->reader = std::thread(&Impl::ReadMessages, this, channel.get());
    return channel;
  }

  // Requires mu_ (held by `lock`). The running channel, restarting the
  // scanner if it died; null with `error` set when there is none before
  // `deadline`.
  std::shared_ptr<Channel> LiveChannel(std::unique_lock<std::mutex>& lock, Deadline deadline,
                                       std::string* error) {
    for (;;) {
      if (stopping_ || !started_) {
        *error = "scanner not running";
        return nullptr;
      }
      if (channel_ && !channel_->dead) return channel_;
      if (channel_) {
        // Joining the old reader may wait for its child to exit; not under mu_.
        std::shared_ptr<Channel> old = std::move(channel_);
        lock.unlock();
        old.reset();
        lock.lock();
        continue;
      }
      if (Clock::now() < next_spawn_) {
        if (next_spawn_ > deadline) {
          *error = kTimedOut;
          return nullptr;
        }
        cv_.wait_until(lock, next_spawn_);
        continue;
      }
      try {
        channel_ = Spawn();
        LogWarn("restarted the scanner (pid " + std::to_string(channel_->child.pid()) + ")");
      } catch (const std::exception& e) {
        next_spawn_ = Clock::now() + kMaxRestartDelay;
        *error = e.what();
        return nullptr;
      }
    }
  }

  enum class Retire { kNo, kYes, kIfStuck };

  // Gives up on scan `id`, unless the reader completed it meanwhile, and
  // retires its channel as `retire` says. One critical section, so that the
  // reader cannot fail the scan as "died" in between.
  ScanVerdict GiveUp(Channel& channel, uint64_t id, std::future<ScanVerdict>* result,
                     const char* error, Retire retire, Clock::time_point sent_at = {}) {
    {
      std::lock_guard lock(mu_);
      if (retire == Retire::kYes) {
        RetireLocked(channel, false);
      } else if (retire == Retire::kIfStuck && Stuck(channel, sent_at)) {
        LogError("scanner (pid " + std::to_string(channel.child.pid()) +
                 ") stopped answering; restarting it");
        RetireLocked(channel, true);
      }
      if (pending_.erase(id) > 0) return Failed(error);
    }
    return result->get();
  }

  // Requires mu_. True when the scanner has said nothing since `sent_at`, and
  // for kStuckAfter at least: it is stuck or stopped and would time out every
  // later scan as well. A scanner still loading its first engine (a minute
  // with the official database) has not started answering yet and is not
  // stuck.
  bool Stuck(const Channel& channel, Clock::time_point sent_at) const {
    return !channel.dead && channel.announced && channel.last_heard < sent_at &&
           Clock::now() - channel.last_heard >= kStuckAfter;
  }

  // Requires mu_. Stops handing out `channel` and closes it, killing the
  // scanner with `kill` if it would not exit on its own; its reader does the
  // rest (fails the scans in flight, reaps the scanner) and the next Scan
  // starts a new one. A channel not yet dead is not yet reaped, so the pid is
  // still ours.
  void RetireLocked(Channel& channel, bool kill) {
    if (channel.dead) return;
    channel.dead = true;
    if (kill) channel.child.Signal(SIGKILL);
    ::shutdown(channel.socket.get(), SHUT_RDWR);
  }

  void ReadMessages(Channel* channel) {
    for (;;) {
      ScannerMessage message;
      FrameStatus status =
          ReadFrame(channel->socket.get(), kMaxMessageBytes, NoDeadline(), &message);
      if (status != FrameStatus::kOk) {
        if (status != FrameStatus::kEof) {
          LogError(std::string("scanner channel: ") + FrameStatusName(status));
        }
        break;
      }
      if (message.has_result()) Complete(*channel, message.result());
      if (message.has_engine()) {
        std::lock_guard lock(mu_);
        channel->last_heard = Clock::now();
        if (channel->dead) continue;  // retired; a successor speaks for the engine
        engine_ = message.engine();
        if (!channel->announced) {
          channel->announced = true;
          channel->load_error = engine_.error();
        }
        cv_.notify_all();
      }
    }
    // Every scan sent on this channel is lost with it.
    std::vector<std::promise<ScanVerdict>> orphans;
    bool stopping;
    {
      std::lock_guard lock(mu_);
      channel->dead = true;
      stopping = stopping_;
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.generation == channel->generation) {
          orphans.push_back(std::move(it->second.promise));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
      bool quick = Clock::now() - channel->started < kStableLifetime;
      restart_delay_ =
          quick ? std::min<std::chrono::milliseconds>(restart_delay_ * 2, kMaxRestartDelay)
                : kMinRestartDelay;
      next_spawn_ = Clock::now() + restart_delay_;
    }
    cv_.notify_all();
    for (auto& orphan : orphans) orphan.set_value(Failed(kDied));
    const int status = channel->child.Reap(kExitGrace);
    if (!stopping) {
      LogError("scanner process " + DescribeWaitStatus(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      LogWarn("scanner process " + DescribeWaitStatus(status) + " while stopping");
    }
  }

  void Complete(Channel& channel, const ScanResult& result) {
    std::promise<ScanVerdict> promise;
    {
      std::lock_guard lock(mu_);
      channel.last_heard = Clock::now();
      auto it = pending_.find(result.id());
      if (it == pending_.end()) return;  // the caller gave up on it
      promise = std::move(it->second.promise);
      pending_.erase(it);
    }
    ScanVerdict verdict;
    verdict.mime_type = result.mime_type();
    verdict.description = result.description();
    switch (result.verdict()) {
      case ScanResult::CLEAN:
        verdict.ok = true;
        break;
      case ScanResult::DETECTED:
        verdict.ok = true;
        verdict.detected = true;
        verdict.signature = result.signature();
        verdict.location = result.location();
        break;
      default:
        verdict.error = "scan failed: " + result.error();
        break;
    }
    promise.set_value(std::move(verdict));
  }

  const ScannerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::shared_ptr<Channel> channel_;
  uint64_t generation_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  EngineInfo engine_;
  std::chrono::milliseconds restart_delay_ = kMinRestartDelay;
  Deadline next_spawn_{};
};

ScannerClient::ScannerClient(ScannerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ScannerClient::~ScannerClient() = default;

void ScannerClient::Start(Deadline deadline) { impl_->Start(deadline); }
ScanVerdict ScannerClient::Scan(std::string_view content, Deadline deadline) {
  return impl_->Scan(content, deadline);
}
v1::worker::EngineInfo ScannerClient::engine() const { return impl_->engine(); }
void ScannerClient::Reload() { impl_->Reload(); }
pid_t ScannerClient::scanner_pid() const { return impl_->scanner_pid(); }

}  // namespace mugai

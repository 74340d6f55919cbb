#include "sanitizers/worker/worker_pool.h"

#include <signal.h>
#include <poll.h>
#include <sys/wait.h>

#include "sanitizers/core/log.h"

namespace mugai {

WorkerPool::WorkerPool(WorkerPoolOptions options) : options_(std::move(options)) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  retired_cv_.notify_all();
  if (replacer_.joinable()) replacer_.join();
  // Each remaining ChildProcess kills and reaps its worker.
}

void WorkerPool::Start() {
  for (unsigned i = 0; i < options_.size; ++i) {
    std::unique_ptr<Worker> worker = SpawnWorker();
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(worker));
  }
  replacer_ = std::thread(&WorkerPool::ReplaceLoop, this);
}

void WorkerPool::ReplaceLoop() {
  for (;;) {
    std::unique_ptr<Worker> old;
    {
      std::unique_lock lock(mutex_);
      retired_cv_.wait(lock, [this] { return stopping_ || !retired_.empty(); });
      if (stopping_) return;
      old = std::move(retired_.front());
      retired_.pop_front();
    }
    old->Kill();
    // A replacement that cannot start (killed while starting, say) leaves
    // the dead worker in its slot: the next Run sees that it has exited and
    // tries again, so the pool never shrinks.
    try {
      ReturnIdle(SpawnWorker());
    } catch (const std::exception& e) {
      LogWarn(std::string("a replacement worker did not start; the next job retries: ") + e.what());
      ReturnIdle(std::move(old));
    }
  }
}

const char* JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kOk: return "ok";
    case JobStatus::kCrashed: return "crashed";
    case JobStatus::kTimeout: return "timeout";
    case JobStatus::kViolation: return "violation";
    case JobStatus::kAbandoned: return "abandoned";
  }
  return "?";
}

uint64_t WorkerPool::restarts() const {
  std::lock_guard lock(mutex_);
  return restarts_;
}

WorkerPool::Gauges WorkerPool::gauges() const {
  std::lock_guard lock(mutex_);
  return {static_cast<unsigned>(idle_.size()), replaced_};
}

v1::worker::WorkerHello WorkerPool::protections() const {
  std::lock_guard lock(mutex_);
  return hello_;
}

// Starts a worker and waits for its hello: a worker that cannot start, or
// cannot confine itself, never gets a job.
std::unique_ptr<WorkerPool::Worker> WorkerPool::SpawnWorker() {
  std::vector<std::string> argv{options_.executable, "--memory-bytes",
                                std::to_string(options_.memory_bytes)};
  if (!options_.sandbox) argv.push_back("--no-sandbox");
  auto worker = std::make_unique<Worker>();
  worker->process = ChildProcess::Spawn(argv, &worker->channel);
  v1::worker::WorkerHello hello;
  FrameStatus s = ReadFrame(worker->channel.get(), 1 << 16, Clock::now() + options_.start_timeout, &hello);
  if (s != FrameStatus::kOk) {
    std::string how = DescribeWaitStatus(worker->Kill());
    throw std::runtime_error("worker " + options_.executable + " did not start (" +
                             FrameStatusName(s) + ", " + how + ")");
  }
  std::lock_guard lock(mutex_);
  hello_ = std::move(hello);
  return worker;
}

int WorkerPool::Worker::Kill(std::chrono::milliseconds grace) {
  channel.reset();
  return process.Reap(grace);
}

bool WorkerPool::Worker::Unfit() {
  if (process.Exited()) return true;
  pollfd p{channel.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

std::unique_ptr<WorkerPool::Worker> WorkerPool::Acquire(Deadline deadline) {
  std::unique_lock lock(mutex_);
  if (!idle_cv_.wait_until(lock, deadline, [this] { return !idle_.empty(); })) return nullptr;
  std::unique_ptr<Worker> worker = std::move(idle_.front());
  idle_.pop_front();
  return worker;
}

void WorkerPool::Release(std::unique_ptr<Worker> worker, JobStatus status) {
  const bool healthy = status == JobStatus::kOk;
  if (healthy && worker->jobs < options_.max_jobs_per_worker) {
    ReturnIdle(std::move(worker));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!healthy) ++restarts_;
    ++replaced_[healthy ? "recycled" : JobStatusName(status)];
    retired_.push_back(std::move(worker));
  }
  retired_cv_.notify_one();
}

void WorkerPool::ReturnIdle(std::unique_ptr<Worker> worker) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(worker));
  }
  idle_cv_.notify_one();
}

JobResult WorkerPool::Run(v1::worker::Job job, Deadline deadline, unsigned kinds) {
  std::vector<v1::worker::Record> records;
  JobResult result = Run(std::move(job), deadline, kinds, [&records](v1::worker::Record record) {
    records.push_back(std::move(record));
    return true;
  });
  result.records = std::move(records);
  return result;
}

JobResult WorkerPool::Run(v1::worker::Job job, Deadline deadline, unsigned kinds, const RecordHandler& handler) {
  {
    std::lock_guard lock(mutex_);
    job.set_id(next_job_id_++);
  }
  std::unique_ptr<Worker> worker = Acquire(deadline);
  if (!worker) return {JobStatus::kTimeout, "no worker became free before the deadline", {}};
  // A worker that died while idle (killed from outside, or a replacement
  // that failed to start) is replaced before it is handed a job, so the
  // item does not pay for it.
  if (worker->Unfit()) {
    LogWarn("an idle worker had died or spoken out of turn; starting a new one");
    worker->Kill();
    {
      std::lock_guard lock(mutex_);
      ++restarts_;
      ++replaced_["died_idle"];
    }
    try {
      worker = SpawnWorker();
    } catch (const std::exception& e) {
      ReturnIdle(std::move(worker));
      return {JobStatus::kCrashed, std::string("cannot start a worker: ") + e.what(), {}};
    }
  }
  ++worker->jobs;
  const auto started = std::chrono::steady_clock::now();
  JobResult result = RunOn(*worker, job, deadline, kinds, handler);
  Release(std::move(worker), result.status);
  if (options_.on_job) options_.on_job(job.converter(), result.status, std::chrono::steady_clock::now() - started);
  return result;
}

namespace {

// The result for a worker that closed its channel mid-job, from how it
// ended. Killing it first means a worker that merely closed its channel is
// not waited for, while one that already died keeps its own cause of death.
JobResult Ended(int wait_status) {
  JobResult result;
  if (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGSYS) {
    result.status = JobStatus::kViolation;
    result.detail = "the worker made a system call its sandbox forbids (killed by seccomp)";
  } else {
    result.status = JobStatus::kCrashed;
    result.detail = "the worker " + DescribeWaitStatus(wait_status) + " during the job";
  }
  return result;
}

}  // namespace

JobResult WorkerPool::RunOn(Worker& worker, const v1::worker::Job& job, Deadline deadline,
                            unsigned kinds, const RecordHandler& handler) {
  const int fd = worker.channel.get();
  JobResult result;
  // A worker that died while idle shows up here as a failed write or an
  // immediate EOF: the job fails closed and the worker is replaced.
  if (FrameStatus s = WriteFrame(fd, job, deadline); s != FrameStatus::kOk) {
    result.status = s == FrameStatus::kTimeout ? JobStatus::kTimeout : JobStatus::kCrashed;
    result.detail = std::string("sending the job failed: ") + FrameStatusName(s);
    if (result.status == JobStatus::kCrashed) result.detail += ", worker " + DescribeWaitStatus(worker.Kill());
    return result;
  }
  RecordValidator validator(job.id(), options_.record_limits, kinds);
  for (;;) {
    v1::worker::Record record;
    FrameStatus s = ReadFrame(fd, validator.MaxFrameBytes(), deadline, &record);
    switch (s) {
      case FrameStatus::kOk:
        break;
      case FrameStatus::kTimeout:
        result.status = JobStatus::kTimeout;
        result.detail = "the worker did not finish before the deadline";
        return result;
      case FrameStatus::kTooLarge:
      case FrameStatus::kMalformed:
        result.status = JobStatus::kViolation;
        result.detail = std::string("the worker sent a ") + FrameStatusName(s) + " record";
        return result;
      case FrameStatus::kEof:
      case FrameStatus::kTruncated:
      case FrameStatus::kIoError:
        // A little grace: a worker killed by seccomp closes its channel
        // before it is reapable, and its cause of death is the finding.
        return Ended(worker.Kill(std::chrono::milliseconds(100)));
    }
    if (std::optional<std::string> violation = validator.Check(record)) {
      result.status = JobStatus::kViolation;
      result.detail = *violation;
      return result;
    }
    if (validator.done()) {
      result.status = JobStatus::kOk;
      return result;
    }
    if (!handler(std::move(record))) {
      result.status = JobStatus::kAbandoned;
      result.detail = "the job was stopped before it finished";
      return result;
    }
  }
}

}  // namespace mugai

// The warm pool of converter processes (mugai-worker). Each worker runs one
// job at a time. A worker that crashes, overruns its deadline or breaks the
// protocol is killed and replaced; every worker is also replaced after
// `max_jobs_per_worker` jobs, so state a parser leaks (or an attacker
// plants) does not live long.
//
// Thread-safe: Run() may be called from many threads; callers beyond the
// pool size wait for a free worker until their deadline.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mugai/v1/worker.pb.h"
#include "sanitizers/core/child_process.h"
#include "sanitizers/worker/frame.h"
#include "sanitizers/worker/record_validator.h"

namespace mugai {

enum class JobStatus {
  kOk,         // records hold everything the worker sent before Done
  kCrashed,    // the worker died or closed the channel mid-job
  kTimeout,    // deadline passed (waiting for a worker, or for the job)
  kViolation,  // the worker broke the protocol or a limit
  kAbandoned,  // the caller's RecordHandler stopped the job
};

// The name used in findings and metrics: "ok", "crashed", "timeout", ...
const char* JobStatusName(JobStatus status);

struct WorkerPoolOptions {
  std::string executable;  // path of mugai-worker
  // Workers confine themselves (sanitizers/sandbox/); false only for
  // measuring what the sandbox costs.
  bool sandbox = true;
  uint64_t memory_bytes = uint64_t{1} << 30;  // each worker's address space
  std::chrono::milliseconds start_timeout{10'000};
  unsigned size = 2;
  unsigned max_jobs_per_worker = 500;
  size_t max_job_bytes = 128u << 20;     // largest Job frame sent
  RecordLimits record_limits;
  // Told of every job when it ends (its converter, status and duration), on
  // the thread that ran it; for metrics. May be empty.
  std::function<void(const std::string& converter, JobStatus status, std::chrono::nanoseconds took)> on_job;
};

struct JobResult {
  JobStatus status = JobStatus::kCrashed;
  std::string detail;  // readable cause for anything but kOk
  std::vector<v1::worker::Record> records;  // validated; Done excluded
};

// Takes each validated record of a job as it arrives, on the thread that
// called Run. Returning false abandons the job: the worker is killed and
// replaced, and Run returns kAbandoned.
using RecordHandler = std::function<bool(v1::worker::Record record)>;

class WorkerPool {
 public:
  explicit WorkerPool(WorkerPoolOptions options);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts every worker. Throws std::runtime_error when one cannot start.
  void Start();

  // Runs `job` on a free worker; its id is assigned here. `kinds`
  // (RecordKinds) are the records the job's converter may produce.
  JobResult Run(v1::worker::Job job, Deadline deadline, unsigned kinds);

  // As above, but each record goes to `handler` as it arrives instead of
  // into JobResult::records, so a caller can stream a job's output (pages
  // of a document) without holding all of it.
  JobResult Run(v1::worker::Job job, Deadline deadline, unsigned kinds, const RecordHandler& handler);

  unsigned size() const { return options_.size; }
  // Workers replaced so far because of a failure (not routine recycling).
  uint64_t restarts() const;

  struct Gauges {
    unsigned idle = 0;  // waiting for a job; size() - idle are busy or starting
    // Replacements by cause: "recycled" (max_jobs_per_worker), "died_idle",
    // and the JobStatusName of a failed job.
    std::map<std::string, uint64_t> replaced;
  };
  Gauges gauges() const;

  // What the most recently started worker reported about its sandbox.
  v1::worker::WorkerHello protections() const;

 private:
  struct Worker {
    ChildProcess process;
    UniqueFd channel;
    unsigned jobs = 0;

    // Closes the channel, kills the process after `grace` (for it to be
    // reapable if it is dying anyway); returns its wait status.
    int Kill(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

    // Not fit for a job: it has exited, or sent something after its last
    // Done, which would otherwise be read as the next job's records.
    bool Unfit();
  };

  std::unique_ptr<Worker> Acquire(Deadline deadline);
  // Puts a worker back after a job; one whose job failed, or that has done
  // max_jobs_per_worker, goes to the replacer instead, so the caller's
  // answer never waits for a new worker to start.
  void Release(std::unique_ptr<Worker> worker, JobStatus status);
  void ReturnIdle(std::unique_ptr<Worker> worker);
  // The replacer thread: kills retired workers and starts their successors.
  void ReplaceLoop();
  std::unique_ptr<Worker> SpawnWorker();
  JobResult RunOn(Worker& worker, const v1::worker::Job& job, Deadline deadline, unsigned kinds,
                  const RecordHandler& handler);

  const WorkerPoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable idle_cv_;
  std::deque<std::unique_ptr<Worker>> idle_;
  std::condition_variable retired_cv_;
  std::deque<std::unique_ptr<Worker>> retired_;
  bool stopping_ = false;
  std::thread replacer_;  // last: started after, joined before the rest
  uint64_t next_job_id_ = 1;
  uint64_t restarts_ = 0;
  std::map<std::string, uint64_t> replaced_;
  v1::worker::WorkerHello hello_;
};

}  // namespace mugai

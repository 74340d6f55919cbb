#include <gtest/gtest.h>
#include <sys/socket.h>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "sanitizers/core/unique_fd.h"
#include "sanitizers/worker/frame.h"
#include "sanitizers/worker/record_validator.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {
namespace {

using v1::worker::Job;
using v1::worker::Record;

struct Pair {
  UniqueFd a, b;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

Deadline In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

TEST(Frame, RoundTrip) {
  Pair p;
  Job job;
  job.set_id(7);
  job.set_converter("text");
  job.set_content(std::string(300000, 'x'));  // larger than a socket buffer
  std::thread writer([&] { EXPECT_EQ(WriteFrame(p.a.get(), job), FrameStatus::kOk); });
  Job got;
  EXPECT_EQ(ReadFrame(p.b.get(), 1 << 20, In(5000), &got), FrameStatus::kOk);
  writer.join();
  EXPECT_EQ(got.id(), 7u);
  EXPECT_EQ(got.content().size(), 300000u);
}

TEST(Frame, CleanCloseIsEofAndMidFrameCloseIsTruncated) {
  Pair p;
  p.a.reset();
  Job got;
  EXPECT_EQ(ReadFrame(p.b.get(), 1 << 20, In(1000), &got), FrameStatus::kEof);
  Pair q;
  ASSERT_EQ(write(q.a.get(), "\x10\x00\x00\x00" "abc", 7), 7);
  q.a.reset();
  EXPECT_EQ(ReadFrame(q.b.get(), 1 << 20, In(1000), &got), FrameStatus::kTruncated);
}

TEST(Frame, AnnouncedLengthIsBoundedBeforeAllocating) {
  Pair p;
  ASSERT_EQ(write(p.a.get(), "\xff\xff\xff\x7f", 4), 4);
  Job got;
  EXPECT_EQ(ReadFrame(p.b.get(), 1 << 20, In(1000), &got), FrameStatus::kTooLarge);
}

TEST(Frame, DeadlineAndGarbage) {
  Pair p;
  Job got;
  auto start = Clock::now();
  EXPECT_EQ(ReadFrame(p.b.get(), 1 << 20, In(100), &got), FrameStatus::kTimeout);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(write(p.a.get(), "\x04\x00\x00\x00\xff\xff\xff\xff", 8), 8);
  EXPECT_EQ(ReadFrame(p.b.get(), 1 << 20, In(1000), &got), FrameStatus::kMalformed);
}

Record TextRecord(uint64_t job, std::string text) {
  Record r;
  r.set_job_id(job);
  r.mutable_text()->set_utf8(std::move(text));
  return r;
}

Record PixelsRecord(uint32_t w, uint32_t h, uint32_t c, size_t bytes) {
  Record r;
  r.set_job_id(1);
  r.mutable_pixels()->set_width(w);
  r.mutable_pixels()->set_height(h);
  r.mutable_pixels()->set_channels(c);
  r.mutable_pixels()->set_data(std::string(bytes, '\0'));
  return r;
}

TEST(RecordValidator, AcceptsAWellFormedJob) {
  RecordValidator v(1, {}, kTextRecords | kPixelRecords);
  EXPECT_FALSE(v.Check(TextRecord(1, "日本語")));
  EXPECT_FALSE(v.Check(PixelsRecord(4, 3, 3, 36)));
  Record done;
  done.set_job_id(1);
  done.mutable_done();
  EXPECT_FALSE(v.Check(done));
  EXPECT_TRUE(v.done());
  EXPECT_TRUE(v.Check(TextRecord(1, "late")));  // nothing after Done
}

TEST(RecordValidator, RejectsWrongJobInvalidUtf8AndOverruns) {
  RecordLimits limits;
  limits.max_text_bytes = 10;
  RecordValidator v(1, limits, kTextRecords);
  EXPECT_TRUE(v.Check(TextRecord(2, "x")));
  EXPECT_TRUE(v.Check(TextRecord(1, "\xc3")));
  RecordValidator w(1, limits, kTextRecords);
  EXPECT_FALSE(w.Check(TextRecord(1, "123456")));
  EXPECT_TRUE(w.Check(TextRecord(1, "123456")));  // 12 bytes in total
}

TEST(RecordValidator, PixelBuffersMustMatchTheirDimensions) {
  RecordValidator v(1, {}, kTextRecords | kPixelRecords);
  EXPECT_TRUE(v.Check(PixelsRecord(4, 3, 3, 35)));
  EXPECT_TRUE(v.Check(PixelsRecord(4, 3, 2, 24)));
  EXPECT_TRUE(v.Check(PixelsRecord(0, 3, 3, 0)));
  EXPECT_TRUE(v.Check(PixelsRecord(100000, 100000, 3, 16)));
}

TEST(RecordValidator, OnlyTheKindsTheConverterProduces) {
  RecordValidator v(1, {}, kTextRecords);
  EXPECT_FALSE(v.Check(TextRecord(1, "ok")));
  EXPECT_TRUE(v.Check(PixelsRecord(4, 3, 3, 36)));
}

TEST(RecordValidator, TotalsAreBoundedAcrossRecords) {
  RecordLimits limits;
  limits.max_pixel_bytes = 100;
  limits.max_records = 5;
  RecordValidator v(1, limits, kPixelRecords);
  EXPECT_FALSE(v.Check(PixelsRecord(4, 3, 3, 36)));
  EXPECT_FALSE(v.Check(PixelsRecord(4, 3, 3, 36)));
  EXPECT_TRUE(v.Check(PixelsRecord(4, 3, 3, 36)));  // 108 bytes in total
  RecordValidator w(1, limits, kTextRecords);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(w.Check(TextRecord(1, "")));
  EXPECT_TRUE(w.Check(TextRecord(1, "")));  // empty records count too
  EXPECT_LT(w.MaxFrameBytes(), size_t{70} << 20);
}

TEST(RecordValidator, FindingCodesMustLookLikeCodes) {
  RecordValidator v(1, {}, kTextRecords | kPixelRecords);
  Record r;
  r.set_job_id(1);
  r.mutable_finding()->set_code("parse.failed");
  EXPECT_FALSE(v.Check(r));
  r.mutable_finding()->set_code("Hello World\n");
  EXPECT_TRUE(v.Check(r));
}

class PoolTest : public ::testing::Test {
 protected:
  PoolTest() {
    WorkerPoolOptions options;
    options.executable = MUGAI_BIN_DIR "/mugai-hostile-worker";
    options.size = 2;
    options.max_jobs_per_worker = 3;
    pool_ = std::make_unique<WorkerPool>(options);
    pool_->Start();
  }

  JobResult RunText(const std::string& content, int timeout_ms = 5000) {
    Job job;
    job.set_converter("text");
    job.set_content(content);
    job.set_max_output_bytes(1 << 20);
    return pool_->Run(job, In(timeout_ms), kTextRecords);
  }

  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(PoolTest, ConvertsAndRecyclesWorkers) {
  for (int i = 0; i < 10; ++i) {  // more jobs than max_jobs_per_worker * size
    JobResult r = RunText("hello " + std::to_string(i));
    ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].text().utf8(), "hello " + std::to_string(i));
  }
  EXPECT_EQ(pool_->restarts(), 0u);
}

TEST_F(PoolTest, EachFailureHasItsStatusAndThePoolRecovers) {
  EXPECT_EQ(RunText("MUGAI-TEST:die-mid-record\n").status, JobStatus::kCrashed);
  EXPECT_EQ(RunText("MUGAI-TEST:hang\n", 300).status, JobStatus::kTimeout);
  EXPECT_EQ(RunText("MUGAI-TEST:garbage\n", 2000).status, JobStatus::kViolation);
  EXPECT_EQ(RunText("MUGAI-TEST:bad-utf8\n").status, JobStatus::kViolation);
  EXPECT_EQ(RunText("MUGAI-TEST:huge-page\n").status, JobStatus::kViolation);
  EXPECT_EQ(pool_->restarts(), 5u);
  EXPECT_EQ(RunText("fine").status, JobStatus::kOk);
}

// Our own child processes: the pool's workers.
std::vector<pid_t> Children() {
  std::vector<pid_t> pids;
  DIR* tasks = opendir("/proc/self/task");
  while (dirent* e = readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    for (pid_t pid; in >> pid;) pids.push_back(pid);
  }
  closedir(tasks);
  return pids;
}

TEST_F(PoolTest, AWorkerKilledWhileIdleIsReplacedBeforeItsNextJob) {
  std::vector<pid_t> workers = Children();
  ASSERT_EQ(workers.size(), 2u);
  for (pid_t pid : workers) kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(RunText("after the kill").status, JobStatus::kOk);
  EXPECT_EQ(pool_->restarts(), 2u);
}

TEST_F(PoolTest, UnknownConverterIsAParseFailureNotACrash) {
  Job job;
  job.set_converter("nonexistent");
  job.set_content("x");
  JobResult r = pool_->Run(job, In(5000), kTextRecords);
  ASSERT_EQ(r.status, JobStatus::kOk);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].finding().code(), "parse.failed");
}

TEST_F(PoolTest, CallersBeyondThePoolSizeWaitTheirTurn) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (RunText("MUGAI-TEST:slow\nx", 20000).status == JobStatus::kOk) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST_F(PoolTest, NoFreeWorkerBeforeTheDeadlineIsATimeout) {
  std::thread a([&] { RunText("MUGAI-TEST:slow\n", 20000); });
  std::thread b([&] { RunText("MUGAI-TEST:slow\n", 20000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(RunText("x", 200).status, JobStatus::kTimeout);
  a.join();
  b.join();
}

}  // namespace
}  // namespace mugai

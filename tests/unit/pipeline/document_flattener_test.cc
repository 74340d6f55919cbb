// The document flattener with real, sandboxed workers: pages rendered by
// several workers at once come out complete and in order, and the limits
// hold whichever side notices first.
#include "sanitizers/pipeline/document_flattener.h"

#include <gtest/gtest.h>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>

#include <memory>
#include <string>

#include "sanitizers/core/findings.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

Deadline In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

size_t PageCount(const std::string& pdf) {
  QPDF reader;
  reader.processMemoryFile("derivative.pdf", pdf.data(), pdf.size());
  return QPDFPageDocumentHelper(reader).getAllPages().size();
}

class FlattenerTest : public ::testing::Test {
 protected:
  static std::unique_ptr<WorkerPool> StartPool(const char* executable) {
    WorkerPoolOptions options;
    options.executable = std::string(MUGAI_BIN_DIR) + "/" + executable;
    options.size = 3;
    auto pool = std::make_unique<WorkerPool>(options);
    pool->Start();
    return pool;
  }

  static FlattenedDocument Flatten(WorkerPool& pool, const std::string& content, const FlattenOptions& options) {
    v1::worker::Job job;
    job.set_converter("pdf");
    job.set_name("document.pdf");
    job.set_content(content);
    return FlattenDocument(pool, job, options, In(60'000));
  }
};

TEST_F(FlattenerTest, PagesFromSeveralWorkersComeOutCompleteAndInOrder) {
  auto pool = StartPool("mugai-worker");
  // Every layer in force: the converters' warm-up (libvips starts threads)
  // must not cost the worker its namespaces.
  EXPECT_EQ(test::MissingLayers(pool->protections()), "");
  const std::string original = test::ReadCorpusFile("pdf/text/tracemonkey.pdf");
  FlattenOptions one_worker;
  one_worker.workers = 1;
  FlattenOptions three_workers;
  three_workers.workers = 3;
  FlattenedDocument alone = Flatten(*pool, original, one_worker);
  FlattenedDocument shared = Flatten(*pool, original, three_workers);
  for (const FlattenedDocument* document : {&alone, &shared}) {
    ASSERT_EQ(document->status, JobStatus::kOk) << document->detail;
    ASSERT_EQ(document->internal_error, "");
    EXPECT_TRUE(document->findings.empty());
    EXPECT_EQ(document->pages, 14u);
    EXPECT_EQ(PageCount(document->pdf), 14u);
  }
  // The same pages, encoded the same way: only the file /ID differs.
  EXPECT_EQ(alone.encodings, shared.encodings);
  EXPECT_EQ(alone.pdf.size(), shared.pdf.size());
}

TEST_F(FlattenerTest, EveryWorkerReportsTheLimitAndItIsReportedOnce) {
  auto pool = StartPool("mugai-worker");
  FlattenOptions options;
  options.workers = 3;
  options.max_pages = 3;
  FlattenedDocument document = Flatten(*pool, test::ReadCorpusFile("pdf/text/tracemonkey.pdf"), options);
  ASSERT_EQ(document.status, JobStatus::kOk) << document.detail;
  ASSERT_EQ(document.findings.size(), 1u);
  EXPECT_EQ(document.findings[0].code(), finding::kLimitPages);
  EXPECT_EQ(document.pages, 0u);
  EXPECT_EQ(document.pdf, "");
}

// A compromised worker that ignores the limits it was given is stopped by
// the daemon's own check.
TEST_F(FlattenerTest, AWorkerIgnoringTheLimitsIsAViolation) {
  auto pool = StartPool("mugai-hostile-worker");
  FlattenOptions options;
  options.workers = 1;
  options.max_pages = 2;
  FlattenedDocument document = Flatten(*pool, "MUGAI-TEST:many-pages\n", options);
  EXPECT_EQ(document.status, JobStatus::kViolation);
  EXPECT_NE(document.detail.find("more than 2 pages"), std::string::npos) << document.detail;
  EXPECT_EQ(document.pdf, "");
  options.max_pages = 100;
  options.max_page_pixels = 99;
  document = Flatten(*pool, "MUGAI-TEST:many-pages\n", options);
  EXPECT_EQ(document.status, JobStatus::kViolation);
  options.max_page_pixels = 100;
  options.max_total_pixels = 450;
  document = Flatten(*pool, "MUGAI-TEST:many-pages\n", options);
  EXPECT_EQ(document.status, JobStatus::kViolation);
  EXPECT_NE(document.detail.find("in all"), std::string::npos) << document.detail;
}

TEST_F(FlattenerTest, AFailingWorkerFailsTheDocument) {
  auto pool = StartPool("mugai-hostile-worker");
  FlattenOptions options;
  options.workers = 2;
  FlattenedDocument document = Flatten(*pool, "MUGAI-TEST:die-mid-record\n", options);
  EXPECT_EQ(document.status, JobStatus::kCrashed) << document.detail;
  EXPECT_EQ(document.pdf, "");
}

}  // namespace
}  // namespace mugai

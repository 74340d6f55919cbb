#include "sanitizers/scan/clam_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/unit/scan/scan_test_util.h"

namespace mugai {
namespace {

using namespace testing_util;

constexpr uint64_t kMaxBytes = 64u << 20;

// Compiling an engine is the slow part; the tests share one.
const ClamEngine& SampleEngine() {
  static const ClamEngine engine(std::string(MUGAI_SAMPLES_DIR) + "/signatures", kMaxBytes);
  return engine;
}

TEST(ClamEngine, LoadsTheTestSignatures) {
  const ClamEngine& engine = SampleEngine();
  EXPECT_GE(engine.signature_count(), 2u);
  EXPECT_TRUE(engine.test_signatures_only());
  EXPECT_EQ(engine.directory(), std::string(MUGAI_SAMPLES_DIR) + "/signatures");
}

TEST(ClamEngine, DetectsEicar) {
  ClamVerdict verdict = SampleEngine().Scan(Eicar());
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.EICAR", 0), 0u) << verdict.signature;
  // A body signature: found anywhere in the content.
  EXPECT_EQ(SampleEngine().Scan("header\n" + Eicar() + "\ntrailer").kind, ClamVerdict::kDetected);
}

TEST(ClamEngine, CleanContent) {
  EXPECT_EQ(SampleEngine().Scan("just some text\n").kind, ClamVerdict::kClean);
  EXPECT_EQ(SampleEngine().Scan("").kind, ClamVerdict::kClean);
  EXPECT_EQ(SampleEngine()
                .Scan(ReadFile(std::string(MUGAI_CORPUS_DIR) +
                               "/dangerzone-test-docs/test_docs/sample-pdf.pdf"))
                .kind,
            ClamVerdict::kClean);
}

// libclamav unpacks containers and encodings, so the one hash signature of
// clam.exe finds it inside all of these.
class DetectsClamExe : public testing::TestWithParam<const char*> {};

TEST_P(DetectsClamExe, InsideContainer) {
  ClamVerdict verdict = SampleEngine().Scan(TestFile(GetParam()));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.ClamExe", 0), 0u) << verdict.signature;
}

INSTANTIATE_TEST_SUITE_P(TestFiles, DetectsClamExe,
                         testing::Values("clam.exe", "clam.zip", "clam.7z", "clam.tar.gz",
                                         "clam.exe.bz2", "clam.cab", "clam.arj", "clam.exe.rtf",
                                         "clam.mail", "clam.pdf", "clam.ole.doc", "clam.exe.html",
                                         "clam.exe.mbox.base64", "clam-upx.exe"));

// Content past the engine's limits is reported, never passed as clean.
TEST(ClamEngine, OverLimitsIsDetected) {
  ClamEngine small(std::string(MUGAI_SAMPLES_DIR) + "/signatures", 4096);
  ClamVerdict verdict = small.Scan(std::string(8192, 'a'));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature, "Heuristics.Limits.Exceeded.MaxFileSize");

  verdict = SampleEngine().Scan(TestFile("clam_cache_emax.tgz"));  // nested too deep
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature.rfind("Heuristics.Limits.Exceeded", 0), 0u) << verdict.signature;
}

TEST(ClamEngine, LoadFailures) {
  EXPECT_THROW(ClamEngine("/nonexistent/signatures", kMaxBytes), std::runtime_error);
  TempDir empty;
  EXPECT_THROW(ClamEngine(empty.path().string(), kMaxBytes), std::runtime_error);
  SignatureDir broken;
  broken.Write("broken.ndb", "this is not a signature\n");
  EXPECT_THROW(ClamEngine(broken.path().string(), kMaxBytes), std::runtime_error);
}

TEST(ClamEngine, ConcurrentScansOnOneEngine) {
  const std::string eicar = Eicar(), zip = TestFile("clam.zip"), clean = RandomBytes(256 << 10);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 30; ++i) {
        if (SampleEngine().Scan(eicar).kind != ClamVerdict::kDetected) ++wrong;
        if (SampleEngine().Scan(zip).kind != ClamVerdict::kDetected) ++wrong;
        if (SampleEngine().Scan(clean).kind != ClamVerdict::kClean) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

TEST(SignatureDirectoryWatch, NoticesNewDatabases) {
  SignatureDir dir;
  SignatureDirectoryWatch watch(dir.path().string());
  EXPECT_FALSE(watch.Changed());
  dir.Write("notes.txt", "not a database\n");
  EXPECT_FALSE(watch.Changed());
  dir.AddBodySignature("extra.ndb", "Mugai.Test.Extra", "mugai extra signature");
  EXPECT_TRUE(watch.Changed());
  EXPECT_THROW(SignatureDirectoryWatch("/nonexistent/signatures"), std::runtime_error);
}

}  // namespace
}  // namespace mugai

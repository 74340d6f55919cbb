#include "sanitizers/scan/clam_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <thread>
#include <utility>
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

// A ustar archive of `files` (name, content), enough for libclamav to
// extract.
std::string Tar(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string tar;
  for (const auto& [name, content] : files) {
    std::string header(512, '\0');
    auto put = [&header](size_t offset, const std::string& field) {
      header.replace(offset, field.size(), field);
    };
    auto octal = [](size_t digits, unsigned long value) {
      char text[16];
      std::snprintf(text, sizeof text, "%0*lo", static_cast<int>(digits), value);
      return std::string(text);
    };
    put(0, name);
    put(100, octal(7, 0644));
    put(108, octal(7, 0));
    put(116, octal(7, 0));
    put(124, octal(11, content.size()));
    put(136, octal(11, 0));
    put(148, std::string(8, ' '));  // the checksum counts its own field as spaces
    put(156, "0");
    put(257, std::string("ustar\0" "00", 8));
    unsigned long sum = 0;
    for (unsigned char c : header) sum += c;
    put(148, octal(6, sum) + std::string(1, '\0'));
    tar += header + content + std::string((512 - content.size() % 512) % 512, '\0');
  }
  return tar + std::string(1024, '\0');
}

TEST(ClamEngine, LocationOfTheMatch) {
  ClamVerdict verdict = SampleEngine().Scan(TestFile("clam.zip"));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.location, "clam.exe");

  verdict = SampleEngine().Scan(TestFile("clam.exe"));  // the item itself
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.location, "");

  // Every named layer, in order.
  const std::string docs = Tar({{"readme.txt", "clean\n"}, {"clam.exe", TestFile("clam.exe")}});
  verdict = SampleEngine().Scan(Tar({{"a.txt", "clean\n"}, {"docs.tar", docs}}));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.location, "docs.tar/clam.exe");

  // libclamav matches the tar itself (the bytes after its end) after it has
  // scanned the clean member: the match is not the member's.
  verdict = SampleEngine().Scan(Tar({{"clean.txt", "clean\n"}}) + Eicar());
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.EICAR", 0), 0u) << verdict.signature;
  EXPECT_EQ(verdict.location, "");

  // Names come from the content, as many as it likes: the location is cut
  // at kMaxLocationBytes (12 names of 90 bytes, nested 12 deep, well
  // within the recursion limit).
  std::string nested = Eicar(), full;
  for (char layer = 'a'; layer < 'a' + 12; ++layer) {
    const std::string name(90, layer);
    nested = Tar({{name, nested}});
    full = full.empty() ? name : name + "/" + full;
  }
  verdict = SampleEngine().Scan(nested);
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  ASSERT_GT(full.size(), ClamVerdict::kMaxLocationBytes);
  EXPECT_EQ(verdict.location, full.substr(0, ClamVerdict::kMaxLocationBytes));

  EXPECT_EQ(SampleEngine().Scan("just some text\n").location, "");
}

// What libclamav (1.4) names for clam.exe inside each container. Layers
// without a name are left out (the tar of a .tar.gz and the stream of a .bz2
// have none), and so are normalized ones.
struct ContainerLocation {
  const char* file;
  const char* location;
};

class LocatesClamExe : public testing::TestWithParam<ContainerLocation> {};

TEST_P(LocatesClamExe, InsideContainer) {
  ClamVerdict verdict = SampleEngine().Scan(TestFile(GetParam().file));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected) << verdict.error;
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.ClamExe", 0), 0u) << verdict.signature;
  EXPECT_EQ(verdict.location, GetParam().location);
}

INSTANTIATE_TEST_SUITE_P(TestFiles, LocatesClamExe,
                         testing::Values(ContainerLocation{"clam.exe", ""},
                                         ContainerLocation{"clam.zip", "clam.exe"},
                                         ContainerLocation{"clam.7z", "clam.exe"},
                                         ContainerLocation{"clam.arj", "clam.exe"},
                                         ContainerLocation{"clam.cab", "clam.exe"},
                                         ContainerLocation{"clam.tar.gz", "clam.exe"},
                                         ContainerLocation{"clam.bz2.zip", "clam.exe"},
                                         ContainerLocation{"clam.impl.zip", "CLAM.EXE"},
                                         ContainerLocation{"clam.bin-be.cpio", "clam.exe"},
                                         ContainerLocation{"clam.bin-le.cpio", "clam.exe"},
                                         ContainerLocation{"clam.newc.cpio", "clam.exe"},
                                         ContainerLocation{"clam.odc.cpio", "clam.exe"},
                                         ContainerLocation{"clam.exe.bz2", ""},
                                         // The mail libclamav decodes from the HTML is a
                                         // layer of its own, named after a temporary file.
                                         ContainerLocation{"clam.exe.html", "attachment"}),
                         [](const testing::TestParamInfo<ContainerLocation>& info) {
                           std::string name = info.param.file;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// Content past the engine's limits is reported, never passed as clean.
TEST(ClamEngine, OverLimitsIsDetected) {
  ClamEngine small(std::string(MUGAI_SAMPLES_DIR) + "/signatures", 4096);
  ClamVerdict verdict = small.Scan(std::string(8192, 'a'));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature, "Heuristics.Limits.Exceeded.MaxFileSize");

  // clam.exe at the bottom of nine .tgz (layer 16) is within reach...
  verdict = SampleEngine().Scan(TestFile("clam_cache_emax.tgz"));
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.ClamExe", 0), 0u) << verdict.signature;
  EXPECT_TRUE(verdict.location.ends_with("clam08.tgz/clam.exe")) << verdict.location;

  // ...and 40 tars deep is not. libclamav reports a heuristic against the
  // item, at the end of the scan.
  std::string nested = "clean\n";
  for (int level = 0; level < 40; ++level) nested = Tar({{"level.tar", nested}});
  verdict = SampleEngine().Scan(nested);
  EXPECT_EQ(verdict.kind, ClamVerdict::kDetected);
  EXPECT_EQ(verdict.signature, "Heuristics.Limits.Exceeded.MaxRecursion");
  EXPECT_EQ(verdict.location, "");
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

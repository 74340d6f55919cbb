#include "sanitizers/detect/type_detector.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace mugai {
namespace {

using test::ReadFile;

struct Sample {
  const char* path;  // under the corpus, or absolute
  const char* mime;
};

class DetectFile : public testing::TestWithParam<Sample> {};

TEST_P(DetectFile, MimeTypeFromContent) {
  std::filesystem::path path = GetParam().path;
  if (path.is_relative()) path = std::filesystem::path(MUGAI_CORPUS_DIR) / path;
  TypeDetector detector;
  DetectedType type = detector.Detect(ReadFile(path));
  EXPECT_EQ(type.mime_type, GetParam().mime) << path;
  EXPECT_FALSE(type.description.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, DetectFile,
    testing::Values(
        Sample{"dangerzone-test-docs/test_docs/sample-pdf.pdf", "application/pdf"},
        Sample{"dangerzone-test-docs/test_docs/sample-docx.docx",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        Sample{"archive/zip/deco_test.zip", "application/zip"},
        Sample{"dangerzone-test-docs/test_docs/sample-png.png", "image/png"},
        Sample{"office/dde/dde-in-csv.csv", "text/plain"},
        Sample{"mail/structure/mimekit_bounce.eml", "message/rfc822"},
        Sample{"archive/tar/test_compat_gzip_1.tgz", "application/gzip"},
        Sample{MUGAI_TESTFILES_DIR "/clam.exe.html", "text/html"},
        Sample{MUGAI_TESTFILES_DIR "/clam.exe.bz2", "application/x-bzip2"},
        Sample{MUGAI_TESTFILES_DIR "/clam.exe", "application/vnd.microsoft.portable-executable"}));

TEST(TypeDetector, JapaneseTextStartingWithE9IsNotADosExecutable) {
  // "関係各位" begins with 0xE9, which libmagic alone takes for a .COM's JMP.
  std::string memo = "関係各位\n";
  while (memo.size() < 60000) memo += "会議の資料を送付します。\n";
  TypeDetector detector;
  EXPECT_EQ(detector.Detect(memo).mime_type, "text/plain");
}

TEST(TypeDetector, EmptyInput) {
  TypeDetector detector;
  EXPECT_EQ(detector.Detect("").mime_type, "application/x-empty");
}

TEST(TypeDetector, DescribesContent) {
  TypeDetector detector;
  DetectedType type = detector.Detect(ReadFile(MUGAI_TESTFILES_DIR "/clam.exe"));
  EXPECT_NE(type.description.find("PE32"), std::string::npos) << type.description;
  type = detector.Detect("<!DOCTYPE html>\n<html><body><p>hello</p></body></html>\n");
  EXPECT_EQ(type.mime_type, "text/html");
}

// Compressed content is named as such, never looked into.
TEST(TypeDetector, DoesNotDecompress) {
  TypeDetector detector;
  DetectedType type = detector.Detect(ReadFile(MUGAI_TESTFILES_DIR "/clam.exe.bz2"));
  EXPECT_EQ(type.description.find("PE32"), std::string::npos) << type.description;
}

// Descriptions travel in protobuf string fields, which must be UTF-8;
// libmagic's escaping keeps them printable ASCII whatever the content.
TEST(TypeDetector, DescriptionsArePrintableAscii) {
  TypeDetector detector;
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(MUGAI_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    DetectedType type = detector.Detect(ReadFile(entry.path()));
    for (unsigned char c : type.description + type.mime_type) {
      ASSERT_TRUE(c >= 0x20 && c < 0x7f) << entry.path() << ": " << type.description;
    }
  }
  EXPECT_GT(files, 100u);
}

// One detector per thread is the contract; several may run side by side.
TEST(TypeDetector, OnePerThread) {
  const std::string pdf =
      ReadFile(std::string(MUGAI_CORPUS_DIR) + "/dangerzone-test-docs/test_docs/sample-pdf.pdf");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      TypeDetector detector;
      for (int i = 0; i < 50; ++i) {
        if (detector.Detect(pdf).mime_type != "application/pdf") ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace mugai

namespace mugai {
namespace {

// One libmagic pass for the types whose MIME type says all; the
// description pass still runs for the rest.
TEST(TypeDetector, DescribesOnlyWhatTheMimeTypeDoesNotSay) {
  TypeDetector detector;
  DetectedType text = detector.Detect("plain words, nothing more\n");
  EXPECT_EQ(text.mime_type, "text/plain");
  EXPECT_EQ(text.description, "text/plain");
  DetectedType gzip = detector.Detect(std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20));
  EXPECT_EQ(gzip.mime_type, "application/gzip");
  EXPECT_NE(gzip.description.find("gzip compressed data"), std::string::npos) << gzip.description;
}

}  // namespace
}  // namespace mugai

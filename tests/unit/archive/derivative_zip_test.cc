#include "sanitizers/archive/derivative_zip.h"

#include <archive_entry.h>
#include <gtest/gtest.h>

#include <clocale>
#include <map>
#include <string>
#include <vector>

namespace mugai {
namespace {

// name -> content, read back with libarchive.
std::map<std::string, std::string> ReadZip(const std::string& zip) {
  // libarchive gives names in the locale's charset.
  setlocale(LC_CTYPE, "C.UTF-8");
  ArchiveReader reader(archive_read_new());
  archive_read_support_format_zip(reader.get());
  EXPECT_EQ(archive_read_open_memory(reader.get(), zip.data(), zip.size()), ARCHIVE_OK);
  std::map<std::string, std::string> files;
  archive_entry* entry = nullptr;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    EXPECT_EQ(archive_entry_filetype(entry), AE_IFREG);
    std::string content(static_cast<size_t>(archive_entry_size(entry)), '\0');
    if (!content.empty()) {
      EXPECT_EQ(archive_read_data(reader.get(), content.data(), content.size()),
                static_cast<la_ssize_t>(content.size()));
    }
    files[archive_entry_pathname_utf8(entry)] = content;
  }
  return files;
}

// The general-purpose flags of every local file header.
std::vector<uint16_t> LocalHeaderFlags(const std::string& zip) {
  std::vector<uint16_t> flags;
  for (size_t at = zip.find("PK\x03\x04"); at != std::string::npos; at = zip.find("PK\x03\x04", at + 4)) {
    flags.push_back(static_cast<uint16_t>(static_cast<uint8_t>(zip[at + 6]) | static_cast<uint8_t>(zip[at + 7]) << 8));
  }
  return flags;
}

TEST(DerivativeZip, HoldsWhatWasAddedUnderUtf8Names) {
  DerivativeZip zip;
  zip.Add("資料/議事録.txt", "第1回\n");
  zip.Add("scan.png", std::string(1000, '\x89'));
  zip.Add("empty.txt", "");
  const std::string bytes = std::move(zip).Finish();
  const auto files = ReadZip(bytes);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files.at("資料/議事録.txt"), "第1回\n");
  EXPECT_EQ(files.at("scan.png"), std::string(1000, '\x89'));
  EXPECT_EQ(files.at("empty.txt"), "");
  // Bit 11: the name is UTF-8 (APPNOTE 4.4.4); Windows reads CP932 otherwise.
  const std::vector<uint16_t> flags = LocalHeaderFlags(bytes);
  ASSERT_EQ(flags.size(), 3u);
  EXPECT_TRUE(flags[0] & 0x0800);
}

TEST(DerivativeZip, AnEmptyZipIsStillAZip) {
  const std::string bytes = DerivativeZip().Finish();
  EXPECT_EQ(bytes.substr(0, 4), std::string("PK\x05\x06", 4));
  EXPECT_TRUE(ReadZip(bytes).empty());
}

}  // namespace
}  // namespace mugai

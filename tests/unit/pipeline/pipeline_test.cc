#include <gtest/gtest.h>

#include <algorithm>

#include "sanitizers/core/findings.h"
#include "sanitizers/pipeline/item_report.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/pipeline/policy.h"

namespace mugai {
namespace {

TEST(SafeName, KeepsOrdinaryNames) {
  SafeName n = MakeSafeName("請求書 2026.txt");
  EXPECT_EQ(n.name, "請求書 2026.txt");
  EXPECT_FALSE(n.changed);
}

TEST(SafeName, TakesTheLastPathComponentOfEitherSeparator) {
  EXPECT_EQ(MakeSafeName("../../etc/passwd").name, "passwd");
  EXPECT_EQ(MakeSafeName("C:\\Users\\a\\b.txt").name, "b.txt");
  EXPECT_TRUE(MakeSafeName("/abs/x").changed);
}

TEST(SafeName, DropsControlAndBidiCharacters) {
  EXPECT_EQ(MakeSafeName("invoice\u202Etxt.exe").name, "invoicetxt.exe");
  EXPECT_EQ(MakeSafeName("a\tb\nc\x07" "d").name, "abcd");
}

TEST(SafeName, NeverEmptyNeverHidden) {
  EXPECT_EQ(MakeSafeName("").name, "unnamed");
  EXPECT_EQ(MakeSafeName("../").name, "unnamed");
  EXPECT_EQ(MakeSafeName("...").name, "unnamed");
  EXPECT_EQ(MakeSafeName(".bashrc").name, "bashrc");
  EXPECT_EQ(MakeSafeName("report.pdf. . ").name, "report.pdf");
}

TEST(SafeName, InvalidUtf8BecomesReplacementCharacters) {
  SafeName n = MakeSafeName("\xff\xfe.txt");
  EXPECT_EQ(n.name, "\uFFFD\uFFFD.txt");
  EXPECT_TRUE(n.changed);
}

TEST(SafeName, LongNamesAreCutOnACharacterBoundary) {
  std::string name;
  for (int i = 0; i < 100; ++i) name += "あ";  // 300 bytes
  SafeName n = MakeSafeName(name);
  EXPECT_LE(n.name.size(), 200u);
  EXPECT_EQ(n.name.size() % 3, 0u);
}

TEST(DerivativeName, ReplacesTheExtension) {
  EXPECT_EQ(DerivativeName("お知らせ.html", ".txt"), "お知らせ.txt");
  EXPECT_EQ(DerivativeName("memo.txt", ".txt"), "memo.txt");
  EXPECT_EQ(DerivativeName("README", ".txt"), "README.txt");
  EXPECT_EQ(DerivativeName("a.tar.gz", ".zip"), "a.tar.zip");
  // Archive members keep their folders; a dot in a folder is no extension.
  EXPECT_EQ(DerivativeName("資料/議事録.docx", ".pdf"), "資料/議事録.pdf");
  EXPECT_EQ(DerivativeName("v1.2/readme", ".txt"), "v1.2/readme.txt");
}

TEST(SafePath, KeepsFoldersAndNeverLeavesTheArchive) {
  EXPECT_EQ(MakeSafePath("資料/2026年度/予算.xlsx").name, "資料/2026年度/予算.xlsx");
  EXPECT_FALSE(MakeSafePath("資料/予算.xlsx").changed);
  EXPECT_EQ(MakeSafePath("../../etc/passwd").name, "etc/passwd");
  EXPECT_EQ(MakeSafePath("/etc/passwd").name, "etc/passwd");
  EXPECT_EQ(MakeSafePath("C:\\Users\\a\\b.txt").name, "Users/a/b.txt");
  EXPECT_EQ(MakeSafePath("a/./b//c/../d").name, "a/b/c/d");
  EXPECT_TRUE(MakeSafePath("a/../b").changed);
  EXPECT_EQ(MakeSafePath("dir/.hidden").name, "dir/hidden");
  EXPECT_EQ(MakeSafePath("x/invoice\u202Etxt.exe").name, "x/invoicetxt.exe");
  EXPECT_EQ(MakeSafePath("../..").name, "unnamed");
  EXPECT_EQ(MakeSafePath("").name, "unnamed");
}

TEST(SafePath, BoundsTheDepth) {
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "d/";
  deep += "f.txt";
  const std::string safe = MakeSafePath(deep).name;
  EXPECT_EQ(std::count(safe.begin(), safe.end(), '/'), 15);
}

TEST(Policy, AllowsOnlyTypesWithAConverter) {
  EXPECT_EQ(ConversionFor("text/plain")->converter, "text");
  EXPECT_EQ(ConversionFor("text/csv")->converter, "text");
  EXPECT_EQ(ConversionFor("text/html")->converter, "html");
  EXPECT_EQ(ConversionFor("application/pdf")->converter, "pdf");
  for (const char* archive : {"application/zip", "application/x-7z-compressed", "application/x-rar",
                              "application/x-tar", "application/gzip", "application/x-lzh-compressed",
                              "application/vnd.ms-cab-compressed", "application/x-iso9660-image"}) {
    ASSERT_TRUE(ConversionFor(archive)) << archive;
    EXPECT_EQ(ConversionFor(archive)->derivative, DerivativeKind::kArchive) << archive;
  }
  // libarchive cannot read these; they stay blocked.
  EXPECT_FALSE(ConversionFor("application/x-arj"));
  EXPECT_FALSE(ConversionFor("application/java-archive"));
  EXPECT_FALSE(ConversionFor("application/epub+zip"));
  for (const char* blocked : {"application/x-dosexec", "text/x-shellscript", "text/x-python",
                              "application/octet-stream", "application/javascript", ""}) {
    EXPECT_FALSE(ConversionFor(blocked)) << blocked;
  }
}

TEST(Findings, WhichCodesHoldTheItem) {
  for (std::string_view code : {finding::kAvDetected, finding::kScanFailed, finding::kTypeBlocked,
                                finding::kParseFailed, finding::kWorkerCrashed,
                                finding::kWorkerTimeout, finding::kWorkerViolation,
                                finding::kLimitPixels, finding::kArchiveEncrypted}) {
    EXPECT_TRUE(HoldsItem(code)) << code;
  }
  for (std::string_view code : {finding::kTypeMismatch, finding::kNameUnsafe, finding::kTextStripped,
                                finding::kTextInvalidBytes}) {
    EXPECT_FALSE(HoldsItem(code)) << code;
  }
}

TEST(Findings, WhichCodesHoldAnEnclosingArchive) {
  for (std::string_view code : {finding::kAvDetected, finding::kArchiveEncrypted, finding::kArchiveOverlap,
                                finding::kLimitDepth, finding::kLimitMembers, finding::kLimitExpandedSize,
                                finding::kLimitRatio, finding::kLimitTime}) {
    EXPECT_TRUE(HoldsEnclosingArchive(code)) << code;
  }
  // A member that cannot be converted is removed; its archive is not a bomb.
  for (std::string_view code : {finding::kTypeBlocked, finding::kParseFailed, finding::kLimitPages,
                                finding::kLimitPixels, finding::kLimitFileSize, finding::kDocumentEncrypted,
                                finding::kArchiveLink, finding::kWorkerCrashed}) {
    EXPECT_FALSE(HoldsEnclosingArchive(code)) << code;
  }
}

}  // namespace
}  // namespace mugai

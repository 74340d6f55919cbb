#include <gtest/gtest.h>

#include "sanitizers/core/findings.h"
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
}

TEST(Policy, AllowsOnlyTypesWithAConverter) {
  EXPECT_EQ(ConversionFor("text/plain")->converter, "text");
  EXPECT_EQ(ConversionFor("text/csv")->converter, "text");
  EXPECT_EQ(ConversionFor("text/html")->converter, "html");
  EXPECT_EQ(ConversionFor("application/pdf")->converter, "pdf");
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

}  // namespace
}  // namespace mugai

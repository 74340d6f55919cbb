#include "sanitizers/detect/claimed_type.h"

#include <gtest/gtest.h>

namespace mugai {
namespace {

constexpr char kPe[] = "application/vnd.microsoft.portable-executable";

TEST(ClaimedType, ExecutableNamedAsPdf) {
  auto reason = DescribeTypeMismatch("invoice.pdf", "", kPe);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, std::string("name \"invoice.pdf\" claims application/pdf, content is ") + kPe);
}

TEST(ClaimedType, LibmagicNamesUnknownToSharedMimeInfo) {
  EXPECT_FALSE(DescribeTypeMismatch("setup.exe", "", kPe));
  EXPECT_FALSE(DescribeTypeMismatch("setup.exe", "", "application/x-dosexec"));
  EXPECT_FALSE(DescribeTypeMismatch("run.sh", "", "text/x-shellscript"));
  EXPECT_FALSE(DescribeTypeMismatch("macro.slk", "", "application/x-sylk"));
}

TEST(ClaimedType, SubclassesAreNotMismatches) {
  EXPECT_FALSE(DescribeTypeMismatch("data.csv", "", "text/plain"));  // text/csv is a text/plain
  EXPECT_FALSE(DescribeTypeMismatch("notes.txt", "", "text/csv"));   // and the other way
  EXPECT_FALSE(DescribeTypeMismatch("backup.tgz", "", "application/gzip"));
  EXPECT_FALSE(DescribeTypeMismatch(
      "report.docx", "",
      "application/vnd.openxmlformats-officedocument.wordprocessingml.document"));
  EXPECT_FALSE(DescribeTypeMismatch("INVOICE.PDF", "", "application/pdf"));
}

TEST(ClaimedType, AliasesAreNotMismatches) {
  EXPECT_FALSE(
      DescribeTypeMismatch("files.rar", "application/x-rar-compressed", "application/x-rar"));
  EXPECT_FALSE(DescribeTypeMismatch("", "application/x-gzip", "application/gzip"));
}

TEST(ClaimedType, VagueClaimsAreNotJudged) {
  EXPECT_FALSE(DescribeTypeMismatch("noextension", "", kPe));
  EXPECT_FALSE(DescribeTypeMismatch("", "", kPe));
  EXPECT_FALSE(DescribeTypeMismatch("", "application/octet-stream", kPe));
  EXPECT_FALSE(DescribeTypeMismatch("", "  ", kPe));
  // *.html is shared by text/html and XHTML, so GIO is not certain.
  EXPECT_FALSE(DescribeTypeMismatch("page.html", "", kPe));
}

TEST(ClaimedType, DeclaredType) {
  auto reason = DescribeTypeMismatch("", "application/pdf", "text/plain");
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "declared type \"application/pdf\", content is text/plain");
  EXPECT_FALSE(DescribeTypeMismatch("", "text/plain; charset=utf-8", "text/plain"));
  EXPECT_FALSE(DescribeTypeMismatch("", " Text/Plain ;charset=\"iso-2022-jp\"", "text/plain"));
  EXPECT_FALSE(DescribeTypeMismatch("", "text/plain", "text/csv"));
}

TEST(ClaimedType, BothClaimsReported) {
  auto reason = DescribeTypeMismatch("invoice.pdf", "application/msword", kPe);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("name \"invoice.pdf\" claims application/pdf"), std::string::npos);
  EXPECT_NE(reason->find("; declared type \"application/msword\""), std::string::npos);
}

// The classic disguise: U+202E RIGHT-TO-LEFT OVERRIDE makes "invoice\u202Efdp.exe"
// display as "invoiceexe.pdf". The reason shows the override instead.
TEST(ClaimedType, ReasonQuotesTheNameSafely) {
  auto reason = DescribeTypeMismatch(
      "inv\xE2\x80\xAE"
      "fdp.exe\n\"x\".pdf",
      "", "text/plain");
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("\"inv\\u{202E}fdp.exe\\u{000A}\\\"x\\\".pdf\""), std::string::npos)
      << *reason;
  // Invalid UTF-8 in a name never reaches the reason.
  reason = DescribeTypeMismatch("bad\xFF.pdf", "", "text/plain");
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("bad\xEF\xBF\xBD.pdf"), std::string::npos) << *reason;
}

}  // namespace
}  // namespace mugai

#include <gtest/gtest.h>

#include "service/milter/milter_session.h"

namespace mugai {
namespace {

v1::Report ReportWith(std::string outcome, std::vector<std::string> codes = {}) {
  v1::Report report;
  report.set_item_id("20261201T000000Z-000000000001");
  report.set_outcome(outcome);
  for (const std::string& code : codes) report.mutable_item()->add_findings()->set_code(code);
  return report;
}

std::string HeaderValue(const SplitMessage& split, std::string_view name) {
  for (const HeaderField& field : split.headers) {
    if (field.name == name) return field.value;
  }
  return "(none)";
}

TEST(CollectedMessage, RebuildsTheMessageWithCrlfHeaderLines) {
  CollectedMessage message(1 << 20);
  message.AddHeader("Subject", "hello");
  message.AddHeader("References", "<a@b>\n\t<c@d>");
  message.EndHeaders();
  message.AddBody("body\r\n");
  EXPECT_EQ(message.bytes(), "Subject: hello\r\nReferences: <a@b>\r\n\t<c@d>\r\n\r\nbody\r\n");
  EXPECT_EQ(message.header_names(), (std::vector<std::string>{"Subject", "References"}));
  EXPECT_FALSE(message.too_large());
}

TEST(CollectedMessage, StopsKeepingBytesPastTheLimit) {
  CollectedMessage message(10);
  message.AddHeader("Subject", "a subject longer than ten bytes");
  EXPECT_TRUE(message.too_large());
  EXPECT_TRUE(message.bytes().empty());
  EXPECT_GT(message.size(), 10u);
}

TEST(Split, HeadersAsFoldedAndTheBodyWithCrlf) {
  SplitMessage split = Split("From: a@example.jp\nSubject: =?UTF-8?B?44GC?=\n =?UTF-8?B?44GE?=\n\nline 1\nline 2\n");
  ASSERT_EQ(split.headers.size(), 2u);
  EXPECT_EQ(split.headers[0].name, "From");
  EXPECT_EQ(split.headers[0].value, "a@example.jp");
  EXPECT_EQ(split.headers[1].value, "=?UTF-8?B?44GC?=\n =?UTF-8?B?44GE?=");
  EXPECT_EQ(split.body, "line 1\r\nline 2\r\n");
}

TEST(Split, RefusesWhatIsNoMessage) {
  EXPECT_THROW(Split("no header block at all"), std::invalid_argument);
  EXPECT_THROW(Split(" continuation first\n\nbody"), std::invalid_argument);
  EXPECT_THROW(Split(": no name\n\nbody"), std::invalid_argument);
}

TEST(HeaderCounts, CountsEachNameWhateverItsCase) {
  auto counts = HeaderCounts({"Received", "Subject", "received", "RECEIVED", "To"});
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0], (std::pair<std::string, int>{"Received", 3}));
  EXPECT_EQ(counts[1], (std::pair<std::string, int>{"Subject", 1}));
  EXPECT_EQ(counts[2], (std::pair<std::string, int>{"To", 1}));
}

TEST(VerdictFor, DeliveredRelaysTheSanitizedMessage) {
  MilterVerdict v = VerdictFor(ReportWith("delivered_with_removals"), "Subject: x\n\nbody\n", {}, {"u@example.jp"});
  EXPECT_EQ(v.kind, MilterVerdict::Kind::kReplace);
  EXPECT_EQ(v.message, "Subject: x\n\nbody\n");
}

TEST(VerdictFor, DeliveredWithoutAMessageIsATempfail) {
  EXPECT_EQ(VerdictFor(ReportWith("delivered"), "", {}, {}).kind, MilterVerdict::Kind::kTempfail);
}

TEST(VerdictFor, QuarantinedBecomesANoticeToTheRecipients) {
  MilterVerdict v = VerdictFor(ReportWith("quarantined", {"av.detected"}), "", {false, "postmaster@city.example.lg.jp"},
                               {"a@city.example.lg.jp", "b@city.example.lg.jp"});
  ASSERT_EQ(v.kind, MilterVerdict::Kind::kReplace);
  SplitMessage notice = Split(v.message);
  EXPECT_EQ(HeaderValue(notice, "X-Mugai-Id"), "20261201T000000Z-000000000001");
  EXPECT_EQ(HeaderValue(notice, "X-Mugai-Sanitized"), "QUARANTINED");
  EXPECT_NE(HeaderValue(notice, "To").find("a@city.example.lg.jp"), std::string::npos);
  EXPECT_NE(HeaderValue(notice, "To").find("b@city.example.lg.jp"), std::string::npos);
  EXPECT_NE(HeaderValue(notice, "From").find("postmaster@city.example.lg.jp"), std::string::npos);
}

TEST(VerdictFor, QuarantinedIsRejectedWhenConfigured) {
  MilterVerdict v = VerdictFor(ReportWith("quarantined", {"av.detected"}), "", {true, "postmaster@x"}, {"a@x"});
  EXPECT_EQ(v.kind, MilterVerdict::Kind::kReject);
  EXPECT_EQ(v.code, "550");
  EXPECT_EQ(v.status, "5.7.1");
  EXPECT_NE(v.text.find("20261201T000000Z-000000000001"), std::string::npos);
  EXPECT_NE(v.text.find("av.detected"), std::string::npos);
}

TEST(VerdictFor, RejectedIsA5xxAndTooLargeSaysSo) {
  EXPECT_EQ(VerdictFor(ReportWith("rejected", {"mail.not_a_message"}), "", {}, {}).status, "5.6.0");
  MilterVerdict large = VerdictFor(ReportWith("rejected", {"limit.message_size"}), "", {}, {});
  EXPECT_EQ(large.kind, MilterVerdict::Kind::kReject);
  EXPECT_EQ(large.code, "552");
  EXPECT_EQ(large.status, "5.3.4");
}

TEST(VerdictFor, AnUnknownOutcomeIsATempfail) {
  EXPECT_EQ(VerdictFor(ReportWith("something new"), "x", {}, {}).kind, MilterVerdict::Kind::kTempfail);
}

TEST(Tempfail, ReplyTextIsOnePrintableLineWithoutFormatDirectives) {
  MilterVerdict v = Tempfail("connect failed\r\n100% 日本");
  EXPECT_EQ(v.code, "451");
  for (char c : v.text) {
    EXPECT_TRUE(c >= 0x20 && c <= 0x7e && c != '%') << v.text;
  }
}

}  // namespace
}  // namespace mugai

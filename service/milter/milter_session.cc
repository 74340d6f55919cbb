#include "service/milter/milter_session.h"

#include <algorithm>
#include <stdexcept>

#include "sanitizers/core/ascii.h"
#include "sanitizers/mail/message_writer.h"

namespace mugai {
namespace {

void AddCodes(const v1::ItemReport& item, std::string& codes) {
  for (const v1::Finding& f : item.findings()) {
    if (codes.find(f.code()) == std::string::npos) codes += (codes.empty() ? "" : " ") + f.code();
  }
}

// The codes that held the message: its own, and those of the parts held.
std::string FindingCodes(const v1::ItemReport& item) {
  std::string codes;
  AddCodes(item, codes);
  for (const v1::ItemReport& child : item.children()) {
    if (child.outcome() == "quarantined" || child.outcome() == "rejected") AddCodes(child, codes);
  }
  return codes.empty() ? "-" : codes;
}

// SMTP reply text is one line of printable ASCII, and libmilter reads "%"
// as the start of a format directive.
std::string ReplyText(std::string text) {
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e || c == '%') c = ' ';
  }
  return text;
}

std::string NoticeBody(const v1::Report& report) {
  return "インターネットから届いたメールを、安全のため隔離しました。\n"
         "A message from the internet was quarantined for safety.\n\n"
         "受付番号 / Item ID: " +
         report.item_id() + "\n理由 / Findings: " + FindingCodes(report.item()) +
         "\n\n必要な場合は、受付番号を添えて情報セキュリティ管理者にお問い合わせください。\n"
         "If you need this message, ask the administrators and give them the item ID.\n";
}

MilterVerdict Notice(const v1::Report& report, const NoticeSettings& settings,
                     const std::vector<std::string>& recipients) {
  OutgoingMessage notice;
  notice.from = {{"Mugai", settings.notice_from}};
  for (const std::string& r : recipients) notice.to.push_back({"", r});
  notice.subject = "[Mugai] 隔離のお知らせ / A message was quarantined";
  notice.sanitized_actions = "QUARANTINED";
  notice.item_id = report.item_id();
  notice.body = NoticeBody(report);
  MilterVerdict verdict;
  verdict.kind = MilterVerdict::Kind::kReplace;
  verdict.message = WriteMessage(notice);
  return verdict;
}

MilterVerdict Reject(std::string code, std::string status, std::string text) {
  return {MilterVerdict::Kind::kReject, std::move(code), std::move(status), ReplyText(std::move(text)), {}};
}

}  // namespace

void CollectedMessage::Append(std::string_view bytes) {
  size_ += bytes.size();
  if (size_ > max_bytes_) {
    too_large_ = true;
    std::string().swap(bytes_);
    return;
  }
  bytes_ += bytes;
}

void CollectedMessage::AddHeader(std::string_view name, std::string_view value) {
  header_names_.emplace_back(name);
  std::string line(name);
  line += ": ";
  // Continuation lines arrive with a bare LF before them.
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) line += '\r';
    line += value[i];
  }
  Append(line + "\r\n");
}

void CollectedMessage::EndHeaders() { Append("\r\n"); }

void CollectedMessage::AddBody(std::string_view chunk) { Append(chunk); }

SplitMessage Split(std::string_view message) {
  const size_t end = message.find("\n\n");
  if (end == std::string_view::npos) throw std::invalid_argument("the message has no end of headers");
  SplitMessage split;
  std::string_view block = message.substr(0, end + 1);
  for (size_t pos = 0; pos < block.size();) {
    size_t eol = block.find('\n', pos);
    std::string_view line = block.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.starts_with(' ') || line.starts_with('\t')) {
      if (split.headers.empty()) throw std::invalid_argument("the message starts with a continuation line");
      split.headers.back().value += "\n" + std::string(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) throw std::invalid_argument("a header line without a name");
    std::string_view value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    split.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  std::string_view body = message.substr(end + 2);
  split.body.reserve(body.size() + body.size() / 32);
  for (char c : body) {
    if (c == '\n') split.body += '\r';
    split.body += c;
  }
  return split;
}

std::vector<std::pair<std::string, int>> HeaderCounts(const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, int>> counts;
  for (const std::string& name : names) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& entry) { return EqualsIgnoringAsciiCase(entry.first, name); });
    if (it == counts.end()) {
      counts.emplace_back(name, 1);
    } else {
      ++it->second;
    }
  }
  return counts;
}

MilterVerdict VerdictFor(const v1::Report& report, std::string sanitized, const NoticeSettings& settings,
                         const std::vector<std::string>& recipients) {
  const std::string& outcome = report.outcome();
  if (outcome == "delivered" || outcome == "delivered_with_removals") {
    if (sanitized.empty()) return Tempfail("mugaid delivered no message for item " + report.item_id());
    MilterVerdict verdict;
    verdict.kind = MilterVerdict::Kind::kReplace;
    verdict.message = std::move(sanitized);
    return verdict;
  }
  if (outcome == "quarantined") {
    if (!settings.reject_quarantined) return Notice(report, settings, recipients);
    return Reject("550", "5.7.1",
                  "message quarantined by the Mugai sanitizer, item " + report.item_id() + " (" +
                      FindingCodes(report.item()) + "); ask the recipient's administrators");
  }
  if (outcome == "rejected") {
    const bool too_large = FindingCodes(report.item()).find("limit.message_size") != std::string::npos;
    return Reject(too_large ? "552" : "550", too_large ? "5.3.4" : "5.6.0",
                  "message refused by the Mugai sanitizer, item " + report.item_id() + " (" +
                      FindingCodes(report.item()) + ")");
  }
  return Tempfail("mugaid answered with no known outcome for item " + report.item_id());
}

MilterVerdict Tempfail(std::string text) {
  return {MilterVerdict::Kind::kTempfail, "451", "4.3.0",
          ReplyText("the Mugai sanitizer is unavailable, try again later: " + text), {}};
}

}  // namespace mugai

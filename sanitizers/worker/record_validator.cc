#include "sanitizers/worker/record_validator.h"

#include <algorithm>

#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

std::string Over(const char* what, uint64_t value, uint64_t limit) {
  return std::string(what) + " " + std::to_string(value) + " exceeds the limit of " +
         std::to_string(limit);
}

constexpr size_t kMaxReasonBytes = 1024;

// A message's kept headers: nine names, each at most once, and the longest
// legal header line is 998 bytes; a long Subject or References may fold over
// many, so a value may be larger, but not without bound.
constexpr unsigned kMaxMailHeaders = 9;
constexpr size_t kMaxMailHeaderBytes = 64 * 1024;
constexpr int kMaxMailboxes = 1000;
constexpr size_t kMaxDeclaredTypeBytes = 255;

std::optional<std::string> CheckMailHeader(const v1::worker::MailHeader& header) {
  size_t bytes = header.value().size();
  if (!IsValidUtf8(header.value())) return "mail header value is not valid UTF-8";
  if (header.mailboxes_size() > kMaxMailboxes) return Over("mailboxes", header.mailboxes_size(), kMaxMailboxes);
  for (const v1::worker::Mailbox& m : header.mailboxes()) {
    if (!IsValidUtf8(m.name()) || !IsValidUtf8(m.address())) return "mailbox is not valid UTF-8";
    bytes += m.name().size() + m.address().size();
  }
  if (bytes > kMaxMailHeaderBytes) return Over("mail header of bytes", bytes, kMaxMailHeaderBytes);
  return std::nullopt;
}

// Codes look like "parse.failed": short, lowercase, dotted. Anything else
// would let a worker put arbitrary text where operators expect a code.
bool IsFindingCode(const std::string& code) {
  if (code.empty() || code.size() > 64) return false;
  for (char c : code) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_')) return false;
  }
  return true;
}

}  // namespace

size_t RecordValidator::MaxFrameBytes() const {
  constexpr size_t kOverhead = 4096;  // ids, field headers, a finding
  uint64_t largest = 0;
  if (kinds_ & kTextRecords) largest = std::max(largest, limits_.max_text_bytes);
  if (kinds_ & kPixelRecords) largest = std::max(largest, std::min(limits_.max_pixels * 4, limits_.max_pixel_bytes));
  if (kinds_ & kChildRecords) largest = std::max(largest, limits_.max_child_bytes);
  return static_cast<size_t>(largest + kOverhead);
}

std::optional<std::string> RecordValidator::Check(const v1::worker::Record& record) {
  using Record = v1::worker::Record;
  if (done_) return "record after Done";
  if (++records_ > limits_.max_records) return Over("records", records_, limits_.max_records);
  auto kind_allowed = [&](unsigned kind, const char* name) -> std::optional<std::string> {
    if (kinds_ & kind) return std::nullopt;
    return std::string(name) + " record from a converter that does not produce them";
  };
  if (record.job_id() != job_id_) {
    return "record for job " + std::to_string(record.job_id()) + " during job " +
           std::to_string(job_id_);
  }
  switch (record.kind_case()) {
    case Record::kText: {
      if (auto wrong = kind_allowed(kTextRecords, "text")) return wrong;
      const std::string& text = record.text().utf8();
      text_bytes_ += text.size();
      if (text_bytes_ > limits_.max_text_bytes) {
        return Over("text of", text_bytes_, limits_.max_text_bytes);
      }
      if (!IsValidUtf8(text)) return "text record is not valid UTF-8";
      return std::nullopt;
    }
    case Record::kPixels: {
      if (auto wrong = kind_allowed(kPixelRecords, "pixels")) return wrong;
      const auto& p = record.pixels();
      if (p.channels() != 1 && p.channels() != 3 && p.channels() != 4) {
        return "pixels with " + std::to_string(p.channels()) + " channels";
      }
      if (p.width() == 0 || p.height() == 0) return "pixels with an empty dimension";
      uint64_t pixels = uint64_t{p.width()} * p.height();
      if (pixels > limits_.max_pixels) return Over("image of pixels", pixels, limits_.max_pixels);
      if (p.data().size() != pixels * p.channels()) {
        return "pixel buffer of " + std::to_string(p.data().size()) + " bytes for " +
               std::to_string(p.width()) + "x" + std::to_string(p.height()) + "x" +
               std::to_string(p.channels());
      }
      pixel_bytes_ += p.data().size();
      if (pixel_bytes_ > limits_.max_pixel_bytes) {
        return Over("pixel bytes", pixel_bytes_, limits_.max_pixel_bytes);
      }
      return std::nullopt;
    }
    case Record::kChild:
      if (auto wrong = kind_allowed(kChildRecords, "child")) return wrong;
      ++children_;
      child_bytes_ += record.child().content().size();
      if (children_ > limits_.max_children) return Over("children", children_, limits_.max_children);
      if (child_bytes_ > limits_.max_child_bytes) {
        return Over("child bytes", child_bytes_, limits_.max_child_bytes);
      }
      if (record.child().declared_type().size() > kMaxDeclaredTypeBytes) return "child's declared type too long";
      return std::nullopt;
    case Record::kMailHeader:
      if (auto wrong = kind_allowed(kMailHeaderRecords, "mail header")) return wrong;
      if (++mail_headers_ > kMaxMailHeaders) return Over("mail headers", mail_headers_, kMaxMailHeaders);
      return CheckMailHeader(record.mail_header());
    case Record::kFinding:
      ++findings_;
      if (findings_ > limits_.max_findings) return Over("findings", findings_, limits_.max_findings);
      // proto3 parsing already rejected invalid UTF-8 in these strings.
      if (!IsFindingCode(record.finding().code())) return "finding with a malformed code";
      if (record.finding().reason().size() > kMaxReasonBytes) return "finding reason too long";
      return std::nullopt;
    case Record::kDone:
      done_ = true;
      return std::nullopt;
    case Record::KIND_NOT_SET:
      break;
  }
  return "record of unknown kind";
}

}  // namespace mugai

// What mugai-milter does with one message, apart from libmilter: collect it
// as the MTA passes it, and turn mugaid's answer into what the MTA must do.
// The callbacks in milter_main.cc only move bytes in and apply a
// MilterVerdict, so everything decided here is testable without an MTA.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/report.pb.h"

namespace mugai {

struct HeaderField {
  std::string name;
  std::string value;  // as folded (LF before each continuation line), without the space after the colon
};

// One message, rebuilt from the header fields and body chunks the MTA
// passes, for mugaid: header lines end in CRLF, the body is as sent.
class CollectedMessage {
 public:
  explicit CollectedMessage(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  void AddHeader(std::string_view name, std::string_view value);
  void EndHeaders();
  void AddBody(std::string_view chunk);

  // More bytes than max_bytes arrived; the message kept is incomplete.
  bool too_large() const { return too_large_; }
  uint64_t size() const { return size_; }
  const std::string& bytes() const { return bytes_; }
  // The header names as they arrived, one per field (repeats included).
  const std::vector<std::string>& header_names() const { return header_names_; }

 private:
  void Append(std::string_view bytes);

  const uint64_t max_bytes_;
  uint64_t size_ = 0;
  bool too_large_ = false;
  std::string bytes_;
  std::vector<std::string> header_names_;
};

// The header fields and the body of a message as mugaid writes it (LF line
// ends); the body comes back with CRLF line ends, as SMTP carries it.
// Throws std::invalid_argument when there is no header block.
struct SplitMessage {
  std::vector<HeaderField> headers;
  std::string body;
};
SplitMessage Split(std::string_view message);

// For each header name, how many fields of it there are, in the order the
// names first appear: what libmilter's smfi_chgheader needs to delete them
// all (by index, from the last).
std::vector<std::pair<std::string, int>> HeaderCounts(const std::vector<std::string>& names);

struct MilterVerdict {
  enum class Kind {
    kReplace,   // headers and body become `message`'s
    kReject,    // 5xx with `code`, `status`, `text`
    kTempfail,  // 4xx, the MTA keeps the message and retries
  };
  Kind kind = Kind::kTempfail;
  std::string code = "451";
  std::string status = "4.3.0";
  std::string text;
  std::string message;  // kReplace: the message the recipients get
};

struct NoticeSettings {
  bool reject_quarantined = false;
  std::string notice_from;
};

// What the MTA must do for mugaid's report (and, when delivered, the
// sanitized message). A quarantined message is rejected, or replaced by a
// notice to `recipients` naming the item id.
MilterVerdict VerdictFor(const v1::Report& report, std::string sanitized, const NoticeSettings& settings,
                         const std::vector<std::string>& recipients);

// The tempfail for when mugaid could not be asked or did not answer.
MilterVerdict Tempfail(std::string text);

}  // namespace mugai

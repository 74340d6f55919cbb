// Stable finding codes and outcomes. These strings are a public contract
// (reports, JSON, tests, operators' scripts): add new ones, never rename.
#pragma once

#include <string_view>

namespace mugai {

namespace finding {
inline constexpr std::string_view kAvDetected = "av.detected";
inline constexpr std::string_view kScanFailed = "scan.failed";
inline constexpr std::string_view kTypeMismatch = "type.mismatch";
inline constexpr std::string_view kTypeBlocked = "type.blocked";
inline constexpr std::string_view kArchiveEncrypted = "archive.encrypted";
inline constexpr std::string_view kArchiveLink = "archive.link";
inline constexpr std::string_view kArchiveSpecialFile = "archive.special_file";
inline constexpr std::string_view kArchiveOverlap = "archive.overlap";
inline constexpr std::string_view kDocumentEncrypted = "document.encrypted";
inline constexpr std::string_view kLimitPages = "limit.pages";
inline constexpr std::string_view kLimitDepth = "limit.depth";
inline constexpr std::string_view kLimitMembers = "limit.members";
inline constexpr std::string_view kLimitExpandedSize = "limit.expanded_size";
inline constexpr std::string_view kLimitRatio = "limit.ratio";
inline constexpr std::string_view kLimitPixels = "limit.pixels";
inline constexpr std::string_view kLimitTime = "limit.time";
inline constexpr std::string_view kLimitFileSize = "limit.file_size";
inline constexpr std::string_view kLimitOutput = "limit.output";
inline constexpr std::string_view kLimitMemory = "limit.memory";
inline constexpr std::string_view kLimitMimeDepth = "limit.mime_depth";
inline constexpr std::string_view kLimitMimeParts = "limit.mime_parts";
inline constexpr std::string_view kLimitHeaderSize = "limit.header_size";
inline constexpr std::string_view kLimitMessageSize = "limit.message_size";
inline constexpr std::string_view kParseFailed = "parse.failed";
inline constexpr std::string_view kWorkerCrashed = "worker.crashed";
inline constexpr std::string_view kWorkerTimeout = "worker.timeout";
inline constexpr std::string_view kWorkerViolation = "worker.violation";
inline constexpr std::string_view kInputEmpty = "input.empty";
inline constexpr std::string_view kInputTruncated = "input.truncated";
inline constexpr std::string_view kInputSizeMismatch = "input.size_mismatch";
inline constexpr std::string_view kInputMalformed = "input.malformed";
inline constexpr std::string_view kNameUnsafe = "name.unsafe";
inline constexpr std::string_view kTextStripped = "text.stripped";
inline constexpr std::string_view kTextInvalidBytes = "text.invalid_bytes";
inline constexpr std::string_view kInternalError = "internal.error";
// Mail: what was changed or noticed in a message. None holds it by itself.
inline constexpr std::string_view kMailMalformed = "mail.malformed";              // GMime recovered from a structure error
inline constexpr std::string_view kMailCharsetFallback = "mail.charset_fallback";  // the declared charset did not decode
inline constexpr std::string_view kMailHtmlConverted = "mail.html_converted";      // an HTML body became text
inline constexpr std::string_view kMailDeceptiveLink = "mail.deceptive_link";      // link text names another URL
inline constexpr std::string_view kMailUuencoded = "mail.uuencoded";                // a uuencoded file in a body became an attachment
inline constexpr std::string_view kMailPartRemoved = "mail.part_removed";          // by policy: inline images, infected parts
inline constexpr std::string_view kMailNotAMessage = "mail.not_a_message";          // rejected: not RFC 5322 text
}  // namespace finding

namespace outcome {
inline constexpr std::string_view kDelivered = "delivered";
inline constexpr std::string_view kDeliveredWithRemovals = "delivered_with_removals";
inline constexpr std::string_view kQuarantined = "quarantined";
inline constexpr std::string_view kRejected = "rejected";
}  // namespace outcome

}  // namespace mugai

namespace mugai {

// True for findings that hold the whole item in quarantine: detections,
// blocked types, limits, and every failure to inspect or convert. The rest
// (type.mismatch, name.unsafe, text.*) are recorded but do not hold it.
constexpr bool HoldsItem(std::string_view code) {
  constexpr std::string_view kHolding[] = {"av.", "scan.", "type.blocked", "archive.", "document.",
                                           "limit.", "parse.", "worker.", "internal."};
  for (std::string_view prefix : kHolding) {
    if (code.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace mugai

// The mail pipeline, on the trusted side: scan the whole message, have a
// worker parse it (sanitizers/mail/), sanitize every attachment through the
// file pipeline, and write a new message from validated parts only: the
// kept headers, the body as plain text with its links handled by policy,
// the attachments' derivatives, and a notice (Japanese and English) of
// everything that was changed, removed or found.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "sanitizers/mail/links.h"
#include "sanitizers/pipeline/file_sanitizer.h"
#include "sanitizers/scan/scanner_client.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {

// The [mail] section of the configuration.
struct MailPolicy {
  LinkPolicy links = LinkPolicy::kDefang;
  // Images shown within an HTML body: false removes them (the text says
  // where they were), true delivers them as sanitized attachments.
  bool keep_inline_images = false;
  // A detection in one attachment: false quarantines the whole message,
  // true removes that attachment and delivers the rest.
  bool strip_infected = false;
  // false: the original goes to the vault when more than the body's
  // conversion to text was changed; true: always.
  bool always_keep_original = false;
  uint32_t max_depth = 16;               // multiparts and messages nested: limit.mime_depth
  uint32_t max_parts = 1000;             // MIME parts in all: limit.mime_parts
  uint64_t max_header_bytes = 256u << 10;  // one header block: limit.header_size
};

class MailSanitizer {
 public:
  // `files` sanitizes the attachments; `workers` parse the message.
  MailSanitizer(const FileSanitizer& files, ScannerClient& scanner, WorkerPool& workers, MailPolicy policy)
      : files_(files), scanner_(scanner), workers_(workers), policy_(policy) {}

  // Thread-safe. Always returns a report with exactly one outcome; when it
  // is delivered (with removals or not) the one derivative is the new
  // message, whose X-Mugai-Id is `item_id`.
  SanitizedFile Sanitize(std::string_view message, std::string_view item_id) const;

 private:
  // Sanitize, with what the vault shows of the message put in `summary` as
  // soon as the worker has parsed it, so a message held later has it too.
  SanitizedFile Convert(std::string_view message, std::string_view item_id, v1::ItemSummary& summary) const;

  const FileSanitizer& files_;
  ScannerClient& scanner_;
  WorkerPool& workers_;
  const MailPolicy policy_;
};

}  // namespace mugai

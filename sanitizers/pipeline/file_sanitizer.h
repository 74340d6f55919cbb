// The file pipeline, on the trusted side: identify and scan (scanner
// process), decide by real type (policy), convert (worker pool), validate
// and write the derivative, and decide the outcome. It never parses the
// untrusted bytes itself; it only hashes them and passes them on.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/report.pb.h"
#include "sanitizers/pipeline/document_flattener.h"
#include "sanitizers/scan/scanner_client.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {

struct PipelineLimits {
  uint64_t max_file_bytes = 100u << 20;
  std::chrono::milliseconds item_time{30'000};
  uint64_t max_text_bytes = 64u << 20;
};

struct FileSubmission {
  std::string_view claimed_name;   // untrusted
  std::string_view declared_type;  // untrusted
  std::string_view content;        // untrusted
};

struct SanitizedFile {
  // item_id and received_at are left for the store to assign.
  v1::Report report;
  // Bytes of each derivative, in the order of report.item().derivatives().
  std::vector<std::string> derivatives;
  // The original must go to the quarantine with the report.
  bool hold_original = false;
};

class FileSanitizer {
 public:
  // `office_workers` run LibreOffice (mugai-office-worker); without them
  // Office documents are held with type.blocked.
  FileSanitizer(ScannerClient& scanner, WorkerPool& workers, PipelineLimits limits,
                FlattenOptions documents = {}, WorkerPool* office_workers = nullptr)
      : scanner_(scanner),
        workers_(workers),
        office_workers_(office_workers),
        limits_(limits),
        documents_(documents) {}

  // Thread-safe. Always returns a report with exactly one outcome.
  SanitizedFile Sanitize(const FileSubmission& file) const;

  const PipelineLimits& limits() const { return limits_; }

 private:
  ScannerClient& scanner_;
  WorkerPool& workers_;
  WorkerPool* const office_workers_;
  const PipelineLimits limits_;
  const FlattenOptions documents_;
};

// The report for an upload refused before the pipeline ran (too large,
// truncated): outcome "rejected" with one finding.
SanitizedFile RejectFile(std::string_view claimed_name, std::string_view declared_type,
                         uint64_t size, std::string_view code, std::string reason);

// The report for an item the pipeline could not finish (it threw):
// quarantined, original kept, with an internal.error finding.
SanitizedFile HoldUnfinished(const FileSubmission& file, std::string reason);

}  // namespace mugai

// The file pipeline, on the trusted side: identify and scan (scanner
// process), decide by real type (policy), convert (worker pool), validate
// and write the derivative, and decide the outcome. It never parses the
// untrusted bytes itself; it only hashes them and passes them on.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/report.pb.h"
#include "sanitizers/pipeline/document_flattener.h"
#include "sanitizers/pipeline/item_report.h"
#include "sanitizers/pipeline/policy.h"
#include "sanitizers/scan/scanner_client.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {

struct PipelineLimits {
  uint64_t max_file_bytes = 100u << 20;
  std::chrono::milliseconds item_time{30'000};
  uint64_t max_text_bytes = 64u << 20;
};

// The [archives] section of the configuration. The limits are for the whole
// submitted item, nested archives included; the workers stop at them while
// they unpack, and the pipeline checks them again on what comes back.
struct ArchiveLimits {
  uint32_t max_depth = 8;                     // archives within archives: limit.depth
  uint32_t max_members = 1000;                // entries of every kind: limit.members
  uint64_t max_expanded_bytes = 256u << 20;   // all members together: limit.expanded_size
  // Unpacked bytes per byte of the item: limit.ratio. Up to
  // `ratio_free_bytes` are always allowed (a small zip of a text file may
  // well expand 200 times).
  uint32_t max_ratio = 100;
  uint64_t ratio_free_bytes = 16u << 20;
  // Blocked members (a type not allowed, a document that cannot be
  // converted): false delivers the rest without them, true holds the whole
  // archive. A detection or an archive limit always holds the whole.
  bool hold_blocked_members = false;
};

struct FileSubmission {
  std::string_view claimed_name;   // untrusted
  std::string_view declared_type;  // untrusted
  std::string_view content;        // untrusted
};

class FileSanitizer {
 public:
  // `office_workers` run LibreOffice (mugai-office-worker); without them
  // Office documents are held with type.blocked.
  FileSanitizer(ScannerClient& scanner, WorkerPool& workers, PipelineLimits limits,
                FlattenOptions documents = {}, WorkerPool* office_workers = nullptr,
                ArchiveLimits archives = {})
      : scanner_(scanner),
        workers_(workers),
        office_workers_(office_workers),
        limits_(limits),
        documents_(documents),
        archives_(archives) {}

  // Thread-safe. Always returns a report with exactly one outcome. The
  // original is to be kept (hold_original) when the item was held, or
  // delivered as anything but its own text.
  SanitizedFile Sanitize(const FileSubmission& file) const;

  // True when a part's outcome makes sanitizing the others pointless.
  using StopsTheRest = bool (*)(const SanitizedFile& part);

  // The attachments of one message of `message_bytes` bytes: each
  // sanitized as an item of its own, one level below the message (a name
  // keeps its folders: "winmail.dat/a.doc"), several at once, sharing one
  // budget as an archive's members do, and ending at `deadline`. nullopt
  // for those not started (the deadline passed, or `stop` said so).
  std::vector<std::optional<SanitizedFile>> SanitizeAttachments(std::vector<v1::worker::Child>& parts,
                                                                uint64_t message_bytes, Deadline deadline,
                                                                StopsTheRest stop) const;

  const PipelineLimits& limits() const { return limits_; }
  const ArchiveLimits& archive_limits() const { return archives_; }

 private:
  // What one submitted item may still use, shared by all its archives
  // (whose members are sanitized on several threads at once).
  struct ItemBudget {
    const Deadline deadline;
    std::mutex mutex;
    uint64_t members_left;  // guarded by mutex, as are the three below
    uint64_t expanded_left;
    uint64_t ratio_left;
    // Threads the item may still start to sanitize members beside the one
    // it runs on, nested archives included: an archive of archives would
    // otherwise start threads by the hundred, all waiting for workers.
    unsigned spare_threads;
  };

  // The budget of one submitted item of `size` bytes.
  ItemBudget NewBudget(uint64_t size, Deadline deadline) const;

  // One item: the submitted file (depth 0, `path` "") or an archive member
  // at `path` inside it.
  SanitizedFile SanitizeItem(const FileSubmission& file, const std::string& path, unsigned depth,
                             ItemBudget& budget) const;
  // Every member, several at once; nullopt for those not started (the
  // deadline passed, or a member already holds the archive).
  std::vector<std::optional<SanitizedFile>> SanitizeMembers(std::vector<v1::worker::Child>& members,
                                                            const std::string& path, unsigned depth,
                                                            ItemBudget& budget, StopsTheRest stop) const;
  // `original`: the archive's bytes, for when its members show it is an
  // Office document libmagic took for a zip.
  SanitizedFile UnpackArchive(v1::ItemReport item, const std::string& path, unsigned depth,
                              v1::worker::Job job, std::string_view original, ItemBudget& budget) const;
  // LibreOffice to PDF, then that PDF flattened.
  SanitizedFile ConvertOffice(v1::ItemReport item, const Conversion& conversion, v1::worker::Job job,
                              Deadline deadline) const;

  ScannerClient& scanner_;
  WorkerPool& workers_;
  WorkerPool* const office_workers_;
  const PipelineLimits limits_;
  const FlattenOptions documents_;
  const ArchiveLimits archives_;
};

// The finding for a ClamAV verdict that is not clean. libclamav's own
// limits (it unpacks archives and mail too, before any worker does) are the
// same limits as the pipeline's, and get the same codes; the rest are
// detections (av.detected).
v1::Finding DetectionFinding(const ScanVerdict& verdict);

// The report for an upload refused before the pipeline ran (too large,
// truncated): outcome "rejected" with one finding.
SanitizedFile RejectFile(std::string_view claimed_name, std::string_view declared_type,
                         uint64_t size, std::string_view code, std::string reason);

// The report for an item the pipeline could not finish (it threw):
// quarantined, original kept, with an internal.error finding.
SanitizedFile HoldUnfinished(const FileSubmission& file, std::string reason);

}  // namespace mugai

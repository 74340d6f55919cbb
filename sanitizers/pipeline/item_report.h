// Building one item's report: what came in, what was found, and the one
// outcome it ends in. Shared by the file pipeline and the archive members.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/admin.pb.h"
#include "mugai/v1/report.pb.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {

// One reason an item is held, with the path of the member it was found in.
struct MemberFinding {
  std::string path;
  std::string code;
  std::string reason;
};

struct SanitizedFile {
  // item_id and received_at are left for the store to assign.
  v1::Report report;
  // Bytes of each derivative, in the order of report.item().derivatives().
  std::vector<std::string> derivatives;
  // The original must go to the quarantine with the report.
  bool hold_original = false;
  // Why a held archive is held when the reasons are in its members (a
  // detection deep inside, members that could not be delivered), each as
  // found, deepest member first. Empty otherwise: the item's own findings
  // say why.
  std::vector<MemberFinding> held_for_members;
  // What the vault shows an administrator of this item (kind, subject,
  // decoded headers, a preview of the text): made from validated worker
  // output only. The ingress service adds the envelope.
  v1::ItemSummary summary;
};

// The start of `safe_text` (MakeSafeText's output) for an administrator's
// preview: at most kPreviewBytes, cut on a character boundary, every link
// defanged.
inline constexpr size_t kPreviewBytes = 4096;
std::string PreviewOf(std::string_view safe_text);

void AddFinding(v1::ItemReport& item, std::string_view code, std::string reason);

// A report for an item as the sender described it (names made printable).
v1::ItemReport NewItem(std::string_view claimed_name, std::string_view declared_type, uint64_t size);

// Ends the item with `outcome`: the one place an outcome is set, so the
// item and the report always agree. The original is held when quarantined.
SanitizedFile Finish(v1::ItemReport item, std::string_view action, std::string_view outcome,
                     std::vector<std::string> derivatives = {});

// Finish(item, action, outcome) with `bytes` as its one derivative, which
// the receiver sees as `name`.
SanitizedFile DeliverOne(v1::ItemReport item, std::string_view action, std::string_view outcome, std::string name,
                         std::string_view media_type, std::string bytes);

// Finish(item, action, quarantined).
SanitizedFile Hold(v1::ItemReport item, std::string_view action);

// Holds the item for a worker that failed (logged, with its finding);
// false when the job went well.
bool HeldForWorker(v1::ItemReport& item, std::string_view name, JobStatus status, const std::string& detail);

// Adds a worker's findings; true when one of them holds the item.
template <typename Findings>
bool HeldForFindings(v1::ItemReport& item, const Findings& findings) {
  bool hold = false;
  for (const v1::worker::WorkerFinding& f : findings) {
    AddFinding(item, f.code(), f.reason());
    hold = hold || HoldsItem(f.code());
  }
  return hold;
}

// Why an item that was not delivered was held: the reasons found in its
// members (moved out of `item`), or its own findings (an empty member is
// rejected, which holds nothing, but is not delivered either).
std::vector<MemberFinding> HeldFor(SanitizedFile& item);

// True for the findings that hold an enclosing archive whole, not just the
// member: detections, the limits on archives and encryption.
bool HoldsEnclosingArchive(std::string_view code);

}  // namespace mugai

#include "service/daemon/file_upload.h"

#include "sanitizers/core/log.h"
#include "sanitizers/pipeline/item_report.h"

namespace mugai {
namespace {

std::string FindingCodes(const v1::ItemReport& item) {
  std::string codes;
  for (const v1::Finding& f : item.findings()) codes += (codes.empty() ? "" : ",") + f.code();
  return codes.empty() ? "-" : codes;
}

}  // namespace

SanitizedFile SanitizeReadFile(const FileSanitizer& files, const std::string& name,
                               const std::string& declared_type, uint64_t size, const std::string& content,
                               std::optional<UploadRefusal> refused) {
  SanitizedFile result;
  if (refused) {
    result = RejectFile(name, declared_type, std::max<uint64_t>(content.size(), size), refused->code,
                        std::move(refused->reason));
  } else {
    const FileSubmission file{name, declared_type, content};
    try {
      result = files.Sanitize(file);
    } catch (const std::exception& e) {
      // Out of memory, say: the item is held, not lost.
      LogError(std::string("sanitizing failed: ") + e.what());
      result = HoldUnfinished(file, e.what());
    }
  }
  result.summary.set_kind("file");
  const v1::ItemReport& item = result.report.item();
  if ((item.action() == "convert_text" || item.action() == "convert_html") && !result.derivatives.empty()) {
    result.summary.set_preview(PreviewOf(result.derivatives[0]));
  }
  return result;
}

grpc::Status RecordOutcome(ItemStore& store, Metrics& metrics, SanitizedFile& result, const std::string& original,
                           const InboxDelivery* inbox, bool* fresh) {
  try {
    const bool recorded =
        store.Record(&result.report, result.hold_original ? &original : nullptr, result.summary, inbox);
    if (recorded) metrics.CountRecorded(result.report, result.summary.kind());
    if (fresh) *fresh = recorded;
  } catch (const StoreError& e) {
    LogError(std::string("cannot record an outcome, refusing the item: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the outcome could not be recorded; try again later"};
  }
  return grpc::Status::OK;
}

void LogOutcome(const SanitizedFile& result, std::chrono::steady_clock::time_point started, std::string_view what,
                std::string_view extra) {
  const v1::ItemReport& item = result.report.item();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  LogInfo(std::string(what) + " " + result.report.item_id() + " \"" + item.claimed_name() + "\" " +
          item.detected_type() + " " + result.report.outcome() + " [" + FindingCodes(item) + "] " +
          std::to_string(ms) + "ms" + (extra.empty() ? "" : " ") + std::string(extra));
}

}  // namespace mugai

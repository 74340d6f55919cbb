#include "sanitizers/pipeline/item_report.h"

#include "sanitizers/core/findings.h"
#include "sanitizers/mail/links.h"
#include "sanitizers/text/safe_text.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/pipeline/names.h"

namespace mugai {

void AddFinding(v1::ItemReport& item, std::string_view code, std::string reason) {
  v1::Finding* f = item.add_findings();
  f->set_code(std::string(code));
  f->set_reason(std::move(reason));
}

v1::ItemReport NewItem(std::string_view claimed_name, std::string_view declared_type, uint64_t size) {
  v1::ItemReport item;
  item.set_claimed_name(ToValidUtf8(claimed_name));
  item.set_claimed_type(ToValidUtf8(declared_type));
  item.set_size(size);
  return item;
}

SanitizedFile Finish(v1::ItemReport item, std::string_view action, std::string_view outcome,
                     std::vector<std::string> derivatives) {
  SanitizedFile result;
  item.set_action(std::string(action));
  item.set_outcome(std::string(outcome));
  result.report.set_outcome(std::string(outcome));
  *result.report.mutable_item() = std::move(item);
  result.derivatives = std::move(derivatives);
  result.hold_original = outcome == outcome::kQuarantined;
  return result;
}

SanitizedFile DeliverOne(v1::ItemReport item, std::string_view action, std::string_view outcome, std::string name,
                         std::string_view media_type, std::string bytes) {
  v1::Derivative* derivative = item.add_derivatives();
  derivative->set_name(std::move(name));
  derivative->set_media_type(std::string(media_type));
  derivative->set_sha256(Sha256Hex(bytes));
  derivative->set_size(bytes.size());
  std::vector<std::string> derivatives;
  derivatives.push_back(std::move(bytes));
  return Finish(std::move(item), action, outcome, std::move(derivatives));
}

std::string PreviewOf(std::string_view safe_text) {
  std::string_view start = safe_text.substr(0, ValidUtf8Prefix(safe_text.substr(0, kPreviewBytes)));
  return ApplyLinkPolicy(start, LinkPolicy::kDefang).text;
}

SanitizedFile Hold(v1::ItemReport item, std::string_view action) {
  return Finish(std::move(item), action, outcome::kQuarantined);
}

namespace {

std::string_view FindingFor(JobStatus status) {
  switch (status) {
    case JobStatus::kTimeout: return finding::kWorkerTimeout;
    case JobStatus::kViolation: return finding::kWorkerViolation;
    case JobStatus::kCrashed:
    case JobStatus::kAbandoned:  // only ever the caller's own doing
    case JobStatus::kOk: break;
  }
  return finding::kWorkerCrashed;
}

}  // namespace

bool HeldForWorker(v1::ItemReport& item, std::string_view name, JobStatus status, const std::string& detail) {
  if (status == JobStatus::kOk) return false;
  LogWarn("item \"" + std::string(name) + "\" (" + item.sha256() + "): " + detail);
  AddFinding(item, FindingFor(status), detail);
  return true;
}

bool HoldsEnclosingArchive(std::string_view code) {
  // limit.pages, limit.pixels and limit.file_size are about one document:
  // that member is removed, its archive is not a bomb for it.
  constexpr std::string_view kEnclosing[] = {
      "av.",         finding::kArchiveEncrypted, finding::kArchiveOverlap,      finding::kLimitDepth,
      finding::kLimitMembers, finding::kLimitExpandedSize, finding::kLimitRatio, finding::kLimitTime};
  for (std::string_view c : kEnclosing) {
    if (c.ends_with('.') ? code.starts_with(c) : code == c) return true;
  }
  return false;
}

std::vector<MemberFinding> HeldFor(SanitizedFile& item) {
  if (!item.held_for_members.empty()) return std::move(item.held_for_members);
  std::vector<MemberFinding> held_for;
  const v1::ItemReport& report = item.report.item();
  for (const v1::Finding& f : report.findings()) {
    if (HoldsItem(f.code()) || f.code() == finding::kInputEmpty) held_for.push_back({report.path(), f.code(), f.reason()});
  }
  if (held_for.empty()) held_for.push_back({report.path(), std::string(finding::kInternalError), "not delivered"});
  return held_for;
}

}  // namespace mugai

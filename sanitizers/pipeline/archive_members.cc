// The archive path of the file pipeline: a worker unpacks, every member is
// sanitized as an item of its own (recursively, within the budget of the
// whole submitted item), and the members' derivatives are delivered as one
// zip written here. What a member could not be made into is left out and
// listed in a notice inside the zip, unless it holds the whole archive.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "sanitizers/archive/derivative_zip.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/pipeline/file_sanitizer.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/pipeline/policy.h"
#include "sanitizers/worker/record_validator.h"

namespace mugai {
namespace {

constexpr std::string_view kNoticeName = "MUGAI_NOTICE.txt";

// Said to the sender with archive.encrypted: what to do instead.
constexpr std::string_view kEncryptedAdvice =
    " / 暗号化（パスワード付き）された圧縮ファイルは中身を検査できないため、隔離しました。"
    "パスワードを付けずに圧縮し直すか、ファイルを圧縮せずにそのまま送ってください。"
    " / An encrypted (password-protected) archive cannot be inspected, so it was quarantined. "
    "Send it again without a password, or send the files themselves, uncompressed.";

std::string JoinPath(const std::string& parent, const std::string& member) {
  return parent.empty() ? member : parent + "/" + member;
}

// The zip's name: the archive's, without the extensions of a compressed
// tar ("report.tar.gz" becomes "report.zip"), else with .zip for its last.
std::string ZipName(const std::string& name) {
  static constexpr std::string_view kCompressedTar[] = {".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tar.lzma",
                                                        ".tar.lz",  ".tar.lz4", ".tar.z",  ".tgz",     ".tbz2",
                                                        ".tbz",     ".txz",     ".tzst"};
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view suffix : kCompressedTar) {
    if (lower.ends_with(suffix) && lower.size() > suffix.size()) {
      return name.substr(0, name.size() - suffix.size()) + ".zip";
    }
  }
  return DerivativeName(name, ".zip");
}

std::string Notice(const std::vector<MemberFinding>& removed) {
  std::string text =
      "無害化通知 / Mugai notice\n\n"
      "この圧縮ファイルの次のファイルは、安全な形に変換できなかったため取り除きました。"
      "原本は管理者が保管しています。必要な場合は管理者にお問い合わせください。\n"
      "The files below could not be made safe and were removed from this archive. "
      "The administrators keep the originals; ask them if you need one.\n\n";
  for (const MemberFinding& r : removed) text += "- " + r.path + "  [" + r.code + "] " + r.reason + "\n";
  return text;
}

// An empty member: nothing to convert and nothing to hide, so it is kept as
// it is, an empty file (an upload of nothing, by contrast, is refused).
SanitizedFile KeptEmpty(const std::string& claimed, const std::string& parent) {
  const SafeName safe = MakeSafePath(claimed);
  v1::ItemReport item = NewItem(claimed, "", 0);
  item.set_path(JoinPath(parent, safe.name));
  item.set_sha256(Sha256Hex(""));
  if (safe.changed) AddFinding(item, finding::kNameUnsafe, "the name was made safe as \"" + safe.name + "\"");
  return DeliverOne(std::move(item), "keep_empty", outcome::kDelivered, safe.name, "application/octet-stream", "");
}

// The members every OpenDocument file has (ODF 1.2 part 3, 3.2 and 4), or
// the one every OOXML package has (ECMA-376 part 2, 10.1.2).
bool IsOfficePackage(const std::vector<v1::worker::Child>& members) {
  auto has = [&](std::string_view name) {
    return std::ranges::any_of(members, [&](const v1::worker::Child& m) { return m.name() == name; });
  };
  return (has("content.xml") && has("META-INF/manifest.xml")) || has("[Content_Types].xml");
}

// True when `member` holds the archive it is in, whole.
bool HoldsItsArchive(const SanitizedFile& member) {
  if (member.report.item().outcome() != outcome::kQuarantined) return false;
  const auto& findings = member.report.item().findings();
  return std::ranges::any_of(member.held_for_members, [](const MemberFinding& f) { return HoldsEnclosingArchive(f.code); }) ||
         std::ranges::any_of(findings, [](const v1::Finding& f) { return HoldsEnclosingArchive(f.code()); });
}

}  // namespace

std::vector<std::optional<SanitizedFile>> FileSanitizer::SanitizeMembers(std::vector<v1::worker::Child>& members,
                                                                        const std::string& path, unsigned depth,
                                                                        ItemBudget& budget, StopsTheRest stop_when) const {
  std::vector<std::optional<SanitizedFile>> sanitized(members.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto sanitize = [&] {
    while (!stop) {
      const size_t i = next++;
      if (i >= members.size()) break;
      v1::worker::Child& child = members[i];
      if (child.content().empty()) {
        sanitized[i] = KeptEmpty(child.name(), path);
        continue;
      }
      if (Clock::now() >= budget.deadline) break;
      try {
        sanitized[i] = SanitizeItem({child.name(), "", child.content()},
                                    JoinPath(path, MakeSafePath(child.name()).name), depth + 1, budget);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        stop = true;
      }
      std::string().swap(*child.mutable_content());
      if (sanitized[i] && stop_when(*sanitized[i])) stop = true;
    }
  };
  // As many members at once as there are workers (each takes one while it
  // converts; a PDF may take more, and waits for them): this thread, and
  // the spare ones the item has left. This thread needs none, so nested
  // archives always make progress.
  unsigned extra = 0;
  {
    std::lock_guard lock(budget.mutex);
    const size_t others = members.empty() ? 0 : members.size() - 1;
    extra = static_cast<unsigned>(std::min<size_t>(budget.spare_threads, others));
    budget.spare_threads -= extra;
  }
  {
    std::vector<std::jthread> threads;
    for (unsigned t = 0; t < extra; ++t) threads.emplace_back(sanitize);
    sanitize();
  }
  {
    std::lock_guard lock(budget.mutex);
    budget.spare_threads += extra;
  }
  if (failure) std::rethrow_exception(failure);
  return sanitized;
}

SanitizedFile FileSanitizer::UnpackArchive(v1::ItemReport item, const std::string& path, unsigned depth,
                                           v1::worker::Job job, std::string_view original,
                                           ItemBudget& budget) const {
  const std::string name = job.name();
  if (depth >= archives_.max_depth) {
    AddFinding(item, finding::kLimitDepth,
               "archives are nested more than " + std::to_string(archives_.max_depth) + " deep");
    return Hold(std::move(item), "quarantine");
  }
  v1::worker::ArchiveOptions& options = *job.mutable_archive();
  {
    // What is left now; archives beside this one may spend some meanwhile,
    // which the check below, under the lock, catches. Nothing left is no
    // job at all (a zero would tell the worker "no limit").
    std::lock_guard lock(budget.mutex);
    if (budget.members_left == 0 || budget.expanded_left == 0 || budget.ratio_left == 0) {
      AddFinding(item,
                 budget.members_left == 0    ? finding::kLimitMembers
                 : budget.expanded_left == 0 ? finding::kLimitExpandedSize
                                             : finding::kLimitRatio,
                 "the item's other archives used up what it may unpack");
      return Hold(std::move(item), "quarantine");
    }
    options.set_max_members(static_cast<uint32_t>(std::min<uint64_t>(budget.members_left, UINT32_MAX)));
    options.set_max_expanded_bytes(budget.expanded_left);
    options.set_max_ratio_bytes(budget.ratio_left);
  }
  options.set_max_member_bytes(limits_.max_file_bytes);
  // The worker stops with limit.time a little before the deadline would
  // make it a worker.timeout.
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(budget.deadline - Clock::now());
  job.set_time_limit_ms(static_cast<uint32_t>(std::max<int64_t>(1, left.count() * 9 / 10)));
  JobResult unpacked = workers_.Run(std::move(job), budget.deadline, kChildRecords);
  if (HeldForWorker(item, name, unpacked.status, unpacked.detail)) return Hold(std::move(item), "quarantine");

  std::vector<v1::worker::Child> members;
  std::vector<v1::worker::WorkerFinding> refused;        // members not unpacked (links, devices)
  std::vector<v1::worker::WorkerFinding> about_archive;  // the archive as a whole
  uint64_t expanded = 0;
  for (v1::worker::Record& record : unpacked.records) {
    if (record.has_child()) {
      expanded += record.child().content().size();
      members.push_back(std::move(*record.mutable_child()));
    } else if (record.has_finding()) {
      // Only links and devices are refused one by one; every other finding
      // stopped the job, and is about the archive (whatever member it names).
      const std::string& code = record.finding().code();
      const bool member_refused = code == finding::kArchiveLink || code == finding::kArchiveSpecialFile;
      (member_refused ? refused : about_archive).push_back(std::move(*record.mutable_finding()));
    }
  }
  // The worker's word is not enough: the same limits, on what it sent.
  auto over = [&](std::string_view code, std::string what, uint64_t value, uint64_t limit) {
    v1::worker::WorkerFinding& f = about_archive.emplace_back();
    f.set_code(std::string(code));
    f.set_reason("the worker sent " + std::to_string(value) + " " + what + "; " + std::to_string(limit) + " were left");
  };
  {
    std::lock_guard lock(budget.mutex);
    const uint64_t entries = members.size() + refused.size();
    if (entries > budget.members_left) {
      over(finding::kLimitMembers, "members", entries, budget.members_left);
    } else if (expanded > budget.expanded_left) {
      over(finding::kLimitExpandedSize, "bytes", expanded, budget.expanded_left);
    } else if (expanded > budget.ratio_left) {
      over(finding::kLimitRatio, "bytes", expanded, budget.ratio_left);
    } else {
      budget.members_left -= entries;
      budget.expanded_left -= expanded;
      budget.ratio_left -= expanded;
    }
  }
  for (v1::worker::WorkerFinding& f : about_archive) {
    if (f.code() == finding::kArchiveEncrypted) f.mutable_reason()->append(kEncryptedAdvice);
  }
  if (HeldForFindings(item, about_archive)) return Hold(std::move(item), "quarantine");
  if (office_workers_ && IsOfficePackage(members)) {
    // An OpenDocument or OOXML file that libmagic took for a plain zip (its
    // first member is not the one it looks for): a document, not a folder.
    v1::worker::Job office;
    office.set_converter("office");
    office.set_name(name);
    office.set_content(std::string(original));
    office.set_max_output_bytes(limits_.max_text_bytes);
    return ConvertOffice(std::move(item), *ConversionFor("application/vnd.oasis.opendocument.text"),
                         std::move(office), budget.deadline);
  }
  if (members.empty() && refused.empty()) {
    // Nothing to deliver, and maybe not what it seems: a compressed file
    // that starts with zeros reads as an empty tar. The original is kept.
    AddFinding(item, finding::kParseFailed, "no members found in the archive");
    return Hold(std::move(item), "quarantine");
  }

  std::vector<MemberFinding> removed;    // members left out
  std::vector<MemberFinding> enclosing;  // what holds this whole archive
  // Held for its members: the findings say which, and what was found.
  auto held_for = [&item](std::vector<MemberFinding> found) {
    for (const MemberFinding& f : found) AddFinding(item, f.code, f.path + ": " + f.reason);
    SanitizedFile held = Hold(std::move(item), "quarantine");
    held.held_for_members = std::move(found);
    return held;
  };
  for (const v1::worker::WorkerFinding& f : refused) {
    v1::ItemReport member = NewItem(f.subject(), "", 0);
    member.set_path(JoinPath(path, MakeSafePath(f.subject()).name));
    AddFinding(member, f.code(), f.reason());
    removed.push_back({member.path(), f.code(), f.reason()});
    *item.add_children() = Hold(std::move(member), "block").report.item();
  }

  // A member that holds the whole archive stops the others: they would not be delivered.
  std::vector<std::optional<SanitizedFile>> sanitized = SanitizeMembers(members, path, depth, budget, HoldsItsArchive);
  for (std::optional<SanitizedFile>& member : sanitized) {
    if (!member || !HoldsItsArchive(*member)) continue;
    for (MemberFinding& f : HeldFor(*member)) {
      if (HoldsEnclosingArchive(f.code)) enclosing.push_back(std::move(f));
    }
    *item.add_children() = std::move(*member->report.mutable_item());
  }
  if (!enclosing.empty()) return held_for(std::move(enclosing));

  DerivativeZip zip;
  std::set<std::string> taken;
  size_t delivered = 0;
  bool with_removals = false;
  for (size_t i = 0; i < members.size(); ++i) {
    if (!sanitized[i]) {
      // Not started: the item's time ran out.
      AddFinding(item, finding::kLimitTime,
                 "the item's time ran out before " + JoinPath(path, MakeSafePath(members[i].name()).name) +
                     " was sanitized");
      return Hold(std::move(item), "quarantine");
    }
    SanitizedFile& member = *sanitized[i];
    v1::ItemReport& report = *member.report.mutable_item();
    if (report.outcome() == outcome::kQuarantined || report.outcome() == outcome::kRejected) {
      for (MemberFinding& f : HeldFor(member)) removed.push_back(std::move(f));
      *item.add_children() = std::move(report);
      continue;
    }
    for (int d = 0; d < report.derivatives_size(); ++d) {
      v1::Derivative& derivative = *report.mutable_derivatives(d);
      derivative.set_name(UniquePath(taken, derivative.name()));
      zip.Add(derivative.name(), member.derivatives[d]);
    }
    ++delivered;
    with_removals = with_removals || report.outcome() == outcome::kDeliveredWithRemovals;
    *item.add_children() = std::move(report);
  }

  if (!removed.empty() && (archives_.hold_blocked_members || delivered == 0)) return held_for(std::move(removed));
  if (!removed.empty()) zip.Add(UniquePath(taken, std::string(kNoticeName)), Notice(removed));
  const std::string action = item.action();
  SanitizedFile archive =
      DeliverOne(std::move(item), action,
                 removed.empty() && !with_removals ? outcome::kDelivered : outcome::kDeliveredWithRemovals,
                 ZipName(name), "application/zip", std::move(zip).Finish());
  // The receiver got less than was sent: the original stays for the
  // administrators.
  archive.hold_original = !removed.empty();
  return archive;
}

}  // namespace mugai

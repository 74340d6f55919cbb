#include "sanitizers/pipeline/file_sanitizer.h"

#include <algorithm>
#include <optional>

#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/detect/claimed_type.h"
#include "sanitizers/image/image_encoder.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/pipeline/policy.h"
#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

// Re-encoding a JPEG loses a little each time; at 90 the loss is not
// visible and the size stays near the original's.
constexpr int kImageJpegQuality = 90;

// The limit an image decoder checks before it decodes (it renders SVG at
// its own size, whatever the DPI).
void SetRenderLimits(const FlattenOptions& documents, v1::worker::Job& job) {
  job.mutable_render()->set_max_page_pixels(documents.max_page_pixels);
}

SanitizedFile Deliver(v1::ItemReport item, std::string_view name, const Conversion& conversion,
                      std::string_view outcome, std::string bytes, std::string_view extension,
                      std::string_view media_type) {
  return DeliverOne(std::move(item), conversion.action, outcome, DerivativeName(name, extension), media_type,
                    std::move(bytes));
}

SanitizedFile ToText(v1::ItemReport item, std::string_view name, const Conversion& conversion, JobResult result) {
  if (HeldForWorker(item, name, result.status, result.detail)) return Hold(std::move(item), "quarantine");
  std::vector<v1::worker::WorkerFinding> findings;
  std::string text;
  // The validator let through only the record kinds of this conversion.
  for (v1::worker::Record& record : result.records) {
    if (record.has_finding()) findings.push_back(std::move(*record.mutable_finding()));
    if (record.has_text()) text += record.text().utf8();
  }
  if (HeldForFindings(item, findings)) return Hold(std::move(item), "quarantine");
  std::string_view outcome = outcome::kDelivered;
  SafeText safe = MakeSafeText(text);
  if (safe.removed > 0) {
    AddFinding(item, finding::kTextStripped, std::to_string(safe.removed) + " control or bidi characters removed");
    outcome = outcome::kDeliveredWithRemovals;
  }
  return Deliver(std::move(item), name, conversion, outcome, std::move(safe.text), ".txt",
                 "text/plain; charset=utf-8");
}

// The job that renders the PDF an Office conversion returned, or nullopt
// when the item is held (the findings say why).
std::optional<v1::worker::Job> PdfOfChild(v1::ItemReport& item, std::string_view name, JobResult& result) {
  if (HeldForWorker(item, name, result.status, result.detail)) return std::nullopt;
  std::vector<v1::worker::WorkerFinding> findings;
  std::vector<v1::worker::Child*> children;
  for (v1::worker::Record& record : result.records) {
    if (record.has_finding()) findings.push_back(std::move(*record.mutable_finding()));
    if (record.has_child()) children.push_back(record.mutable_child());
  }
  if (HeldForFindings(item, findings)) return std::nullopt;
  if (children.size() != 1) {
    AddFinding(item, finding::kParseFailed,
               "the Office conversion returned " + std::to_string(children.size()) + " documents, not one");
    return std::nullopt;
  }
  v1::worker::Job job;
  job.set_converter("pdf");
  job.set_name(std::string(name) + ".pdf");
  job.set_content(std::move(*children[0]->mutable_content()));
  return job;
}

SanitizedFile ToImage(v1::ItemReport item, std::string_view name, const Conversion& conversion, bool jpeg,
                      JobResult result) {
  if (HeldForWorker(item, name, result.status, result.detail)) return Hold(std::move(item), "quarantine");
  std::vector<v1::worker::WorkerFinding> findings;
  std::vector<const v1::worker::Pixels*> images;
  for (v1::worker::Record& record : result.records) {
    if (record.has_finding()) findings.push_back(std::move(*record.mutable_finding()));
    if (record.has_pixels()) images.push_back(&record.pixels());
  }
  if (HeldForFindings(item, findings)) return Hold(std::move(item), "quarantine");
  if (images.size() != 1) {
    AddFinding(item, finding::kParseFailed,
               "the image decoder returned " + std::to_string(images.size()) + " images, not one");
    return Hold(std::move(item), "quarantine");
  }
  const v1::worker::Pixels& p = *images[0];
  const PixelView pixels{p.width(), p.height(), p.channels(), p.data()};
  // A photograph stays a JPEG (as a PNG it would grow several times over);
  // everything else becomes a lossless PNG. JPEG has no alpha, and JPEG
  // originals have none either.
  if (jpeg && pixels.channels != 4) {
    return Deliver(std::move(item), name, conversion, outcome::kDelivered, EncodeJpeg(pixels, kImageJpegQuality),
                   ".jpg", "image/jpeg");
  }
  return Deliver(std::move(item), name, conversion, outcome::kDelivered, EncodePng(pixels), ".png", "image/png");
}

SanitizedFile ToFlattenedPdf(v1::ItemReport item, std::string_view name, const Conversion& conversion,
                             FlattenedDocument document) {
  if (HeldForWorker(item, name, document.status, document.detail)) return Hold(std::move(item), "quarantine");
  if (!document.internal_error.empty()) {
    AddFinding(item, finding::kInternalError, document.internal_error);
    return Hold(std::move(item), "quarantine");
  }
  if (HeldForFindings(item, document.findings)) return Hold(std::move(item), "quarantine");
  if (document.pages == 0) {
    AddFinding(item, finding::kParseFailed, "the document produced no pages");
    return Hold(std::move(item), "quarantine");
  }
  return Deliver(std::move(item), name, conversion, outcome::kDelivered, std::move(document.pdf), ".pdf",
                 "application/pdf");
}

}  // namespace

v1::Finding DetectionFinding(const ScanVerdict& verdict) {
  struct Heuristic {
    std::string_view signature, code, meaning;
  };
  static constexpr Heuristic kHeuristics[] = {
      {"Heuristics.Limits.Exceeded.MaxRecursion", finding::kLimitDepth, "nested deeper than it unpacks"},
      {"Heuristics.Limits.Exceeded.MaxFiles", finding::kLimitMembers, "more members than it unpacks"},
      {"Heuristics.Limits.Exceeded.MaxScanSize", finding::kLimitExpandedSize, "expands to more than it scans"},
      {"Heuristics.Limits.Exceeded.MaxFileSize", finding::kLimitFileSize, "a file larger than it scans"},
      {"Heuristics.Limits.Exceeded.MaxScanTime", finding::kLimitTime, "takes longer than it scans"},
      {"Heuristics.Zip.OverlappingFiles", finding::kArchiveOverlap,
       "zip entries that overlap (a zip bomb)"},
  };
  v1::Finding f;
  for (const Heuristic& h : kHeuristics) {
    if (verdict.signature.starts_with(h.signature)) {
      f.set_code(std::string(h.code));
      f.set_reason("ClamAV stopped: " + std::string(h.meaning) + " (" + verdict.signature + ")");
      return f;
    }
  }
  f.set_code(std::string(finding::kAvDetected));
  f.set_reason("ClamAV detected " + verdict.signature);
  if (!verdict.location.empty()) f.mutable_reason()->append(" in " + MakeSafePath(verdict.location).name);
  return f;
}

SanitizedFile RejectFile(std::string_view claimed_name, std::string_view declared_type,
                         uint64_t size, std::string_view code, std::string reason) {
  v1::ItemReport item = NewItem(claimed_name, declared_type, size);
  AddFinding(item, code, std::move(reason));
  return Finish(std::move(item), "reject", outcome::kRejected);
}

SanitizedFile HoldUnfinished(const FileSubmission& file, std::string reason) {
  v1::ItemReport item = NewItem(file.claimed_name, file.declared_type, file.content.size());
  item.set_sha256(Sha256Hex(file.content));
  AddFinding(item, finding::kInternalError, "the item could not be finished: " + reason);
  return Hold(std::move(item), "quarantine");
}

FileSanitizer::ItemBudget FileSanitizer::NewBudget(uint64_t size, Deadline deadline) const {
  const uint64_t ratio_bytes = std::max<uint64_t>(archives_.ratio_free_bytes, uint64_t{archives_.max_ratio} * size);
  const unsigned spare_threads = workers_.size() > 0 ? workers_.size() - 1 : 0;
  return ItemBudget{deadline, {}, archives_.max_members, archives_.max_expanded_bytes, ratio_bytes, spare_threads};
}

SanitizedFile FileSanitizer::Sanitize(const FileSubmission& file) const {
  ItemBudget budget = NewBudget(file.content.size(), Clock::now() + limits_.item_time);
  SanitizedFile sanitized = SanitizeItem(file, "", 0, budget);
  // The vault keeps every original the receiver does not get as it was
  // (原本), so that what a conversion lost can still be released; text
  // only re-encoded as UTF-8 is the same text.
  const v1::ItemReport& item = sanitized.report.item();
  const bool changed = item.outcome() == outcome::kDeliveredWithRemovals ||
                       (item.outcome() == outcome::kDelivered && item.action() != "convert_text" &&
                        item.action() != "keep_empty");
  sanitized.hold_original = sanitized.hold_original || changed;
  return sanitized;
}

std::vector<std::optional<SanitizedFile>> FileSanitizer::SanitizeAttachments(std::vector<v1::worker::Child>& parts,
                                                                             uint64_t message_bytes, Deadline deadline,
                                                                             StopsTheRest stop) const {
  ItemBudget budget = NewBudget(message_bytes, deadline);
  return SanitizeMembers(parts, "", 0, budget, stop);
}

SanitizedFile FileSanitizer::SanitizeItem(const FileSubmission& file, const std::string& path, unsigned depth,
                                          ItemBudget& budget) const {
  const Deadline deadline = budget.deadline;
  v1::ItemReport item = NewItem(file.claimed_name, file.declared_type, file.content.size());
  item.set_path(path);
  if (file.content.empty()) {
    AddFinding(item, finding::kInputEmpty, "the file is empty");
    return Finish(std::move(item), "reject", outcome::kRejected);
  }
  if (file.content.size() > limits_.max_file_bytes) {
    AddFinding(item, finding::kLimitFileSize,
               "the file has " + std::to_string(file.content.size()) + " bytes; the limit is " +
                   std::to_string(limits_.max_file_bytes));
    return Finish(std::move(item), "reject", outcome::kRejected);
  }
  item.set_sha256(Sha256Hex(file.content));

  // A member's name is its path in the archive, and keeps its folders.
  SafeName name = depth == 0 ? MakeSafeName(file.claimed_name) : MakeSafePath(file.claimed_name);
  if (name.changed) {
    AddFinding(item, finding::kNameUnsafe, "the name was made safe as \"" + name.name + "\"");
  }

  ScanVerdict verdict = scanner_.Scan(file.content, deadline);
  if (!verdict.ok) {
    AddFinding(item, finding::kScanFailed, "the virus scan did not complete: " + verdict.error);
    return Hold(std::move(item), "quarantine");
  }
  item.set_detected_type(verdict.mime_type);
  // The name as the receiver's Windows reads it: "report.exe." and
  // "report.exe " are report.exe there.
  if (auto mismatch = DescribeTypeMismatch(name.name, file.declared_type, verdict.mime_type)) {
    AddFinding(item, finding::kTypeMismatch, std::move(*mismatch));
  }
  if (verdict.detected) {
    *item.add_findings() = DetectionFinding(verdict);
    return Hold(std::move(item), "quarantine");
  }
  std::optional<Conversion> conversion = ConversionFor(verdict.mime_type, verdict.description);
  if (conversion && conversion->workers == WorkerKind::kOffice && !office_workers_) conversion.reset();
  if (!conversion) {
    AddFinding(item, finding::kTypeBlocked,
               verdict.mime_type + " (" + verdict.description + ") is not allowed through");
    return Hold(std::move(item), "block");
  }

  v1::worker::Job job;
  job.set_converter(std::string(conversion->converter));
  job.set_name(name.name);
  job.set_content(std::string(file.content));
  job.set_max_output_bytes(limits_.max_text_bytes);
  switch (conversion->derivative) {
    case DerivativeKind::kText:
      return ToText(std::move(item), name.name, *conversion, workers_.Run(std::move(job), deadline, conversion->record_kinds));
    case DerivativeKind::kFlattenedPdf:
      return ToFlattenedPdf(std::move(item), name.name, *conversion, FlattenDocument(workers_, job, documents_, deadline));
    case DerivativeKind::kImage: {
      SetRenderLimits(documents_, job);
      const bool jpeg = verdict.mime_type == "image/jpeg";
      return ToImage(std::move(item), name.name, *conversion, jpeg,
                     workers_.Run(std::move(job), deadline, conversion->record_kinds));
    }
    case DerivativeKind::kFlattenedPdfOfChild:
      return ConvertOffice(std::move(item), *conversion, std::move(job), deadline);
    case DerivativeKind::kArchive:
      item.set_action(std::string(conversion->action));
      return UnpackArchive(std::move(item), path, depth, std::move(job), file.content, budget);
  }
  AddFinding(item, finding::kInternalError, "no derivative for this conversion");
  return Hold(std::move(item), "quarantine");
}

SanitizedFile FileSanitizer::ConvertOffice(v1::ItemReport item, const Conversion& conversion, v1::worker::Job job,
                                           Deadline deadline) const {
  const std::string name = job.name();
  // LibreOffice must stop in time for its PDF to be rendered too.
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  job.set_time_limit_ms(static_cast<uint32_t>(std::max<int64_t>(1, left.count() * 2 / 3)));
  JobResult result = office_workers_->Run(std::move(job), deadline, conversion.record_kinds);
  std::optional<v1::worker::Job> pdf = PdfOfChild(item, name, result);
  if (!pdf) return Hold(std::move(item), "quarantine");
  return ToFlattenedPdf(std::move(item), name, conversion, FlattenDocument(workers_, *pdf, documents_, deadline));
}

}  // namespace mugai

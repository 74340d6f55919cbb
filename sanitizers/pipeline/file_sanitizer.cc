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

void AddFinding(v1::ItemReport& item, std::string_view code, std::string reason) {
  v1::Finding* f = item.add_findings();
  f->set_code(std::string(code));
  f->set_reason(std::move(reason));
}

v1::ItemReport NewItem(std::string_view claimed_name, std::string_view declared_type,
                       uint64_t size) {
  v1::ItemReport item;
  item.set_claimed_name(ToValidUtf8(claimed_name));
  item.set_claimed_type(ToValidUtf8(declared_type));
  item.set_size(size);
  return item;
}

// Ends the item with `outcome`: the one place an outcome is set, so the
// item and the report always agree.
SanitizedFile Finish(v1::ItemReport item, std::string_view action, std::string_view outcome,
                     std::vector<std::string> derivatives = {}) {
  SanitizedFile result;
  item.set_action(std::string(action));
  item.set_outcome(std::string(outcome));
  result.report.set_outcome(std::string(outcome));
  *result.report.mutable_item() = std::move(item);
  result.derivatives = std::move(derivatives);
  result.hold_original = outcome == outcome::kQuarantined;
  return result;
}

SanitizedFile Hold(v1::ItemReport item, std::string_view action) {
  return Finish(std::move(item), action, outcome::kQuarantined);
}

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

// Re-encoding a JPEG loses a little each time; at 90 the loss is not
// visible and the size stays near the original's.
constexpr int kImageJpegQuality = 90;

// The limit an image decoder checks before it decodes (it renders SVG at
// its own size, whatever the DPI).
void SetRenderLimits(const FlattenOptions& documents, v1::worker::Job& job) {
  job.mutable_render()->set_max_page_pixels(documents.max_page_pixels);
}

// Holds the item for a worker that failed; false when it did not.
bool HeldForWorker(v1::ItemReport& item, std::string_view name, JobStatus status, const std::string& detail) {
  if (status == JobStatus::kOk) return false;
  LogWarn("item \"" + std::string(name) + "\" (" + item.sha256() + "): " + detail);
  AddFinding(item, FindingFor(status), detail);
  return true;
}

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

SanitizedFile Deliver(v1::ItemReport item, std::string_view name, const Conversion& conversion,
                      std::string_view outcome, std::string bytes, std::string_view extension,
                      std::string_view media_type) {
  v1::Derivative* derivative = item.add_derivatives();
  derivative->set_name(DerivativeName(name, extension));
  derivative->set_media_type(std::string(media_type));
  derivative->set_sha256(Sha256Hex(bytes));
  derivative->set_size(bytes.size());
  std::vector<std::string> derivatives;
  derivatives.push_back(std::move(bytes));
  return Finish(std::move(item), conversion.action, outcome, std::move(derivatives));
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

SanitizedFile FileSanitizer::Sanitize(const FileSubmission& file) const {
  const Deadline deadline = Clock::now() + limits_.item_time;
  v1::ItemReport item = NewItem(file.claimed_name, file.declared_type, file.content.size());
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

  SafeName name = MakeSafeName(file.claimed_name);
  if (name.changed) {
    AddFinding(item, finding::kNameUnsafe, "the name was made safe as \"" + name.name + "\"");
  }

  ScanVerdict verdict = scanner_.Scan(file.content, deadline);
  if (!verdict.ok) {
    AddFinding(item, finding::kScanFailed, "the virus scan did not complete: " + verdict.error);
    return Hold(std::move(item), "quarantine");
  }
  item.set_detected_type(verdict.mime_type);
  if (auto mismatch = DescribeTypeMismatch(file.claimed_name, file.declared_type, verdict.mime_type)) {
    AddFinding(item, finding::kTypeMismatch, std::move(*mismatch));
  }
  if (verdict.detected) {
    AddFinding(item, finding::kAvDetected, "ClamAV detected " + verdict.signature);
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
    case DerivativeKind::kFlattenedPdfOfChild: {
      // LibreOffice must stop in time for its PDF to be rendered too.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      job.set_time_limit_ms(static_cast<uint32_t>(std::max<int64_t>(1, left.count() * 2 / 3)));
      JobResult result = office_workers_->Run(std::move(job), deadline, conversion->record_kinds);
      std::optional<v1::worker::Job> pdf = PdfOfChild(item, name.name, result);
      if (!pdf) return Hold(std::move(item), "quarantine");
      return ToFlattenedPdf(std::move(item), name.name, *conversion,
                            FlattenDocument(workers_, *pdf, documents_, deadline));
    }
  }
  AddFinding(item, finding::kInternalError, "no derivative for this conversion");
  return Hold(std::move(item), "quarantine");
}

}  // namespace mugai

#include "sanitizers/pipeline/file_sanitizer.h"

#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/detect/claimed_type.h"
#include "sanitizers/pdf/flattened_pdf.h"
#include "sanitizers/pdf/pdf_converter.h"
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
    case JobStatus::kOk: break;
  }
  return finding::kWorkerCrashed;
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
  std::optional<Conversion> conversion = ConversionFor(verdict.mime_type);
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
  JobResult result = workers_.Run(std::move(job), deadline, conversion->record_kinds);
  if (result.status != JobStatus::kOk) {
    LogWarn("item \"" + name.name + "\" (" + item.sha256() + "): " + result.detail);
    AddFinding(item, FindingFor(result.status), result.detail);
    return Hold(std::move(item), "quarantine");
  }
  for (const v1::worker::Record& record : result.records) {
    if (record.has_finding()) AddFinding(item, record.finding().code(), record.finding().reason());
  }
  for (const v1::Finding& f : item.findings()) {
    if (HoldsItem(f.code())) return Hold(std::move(item), "quarantine");
  }

  // The validator let through only the record kinds of this conversion.
  std::string_view outcome = outcome::kDelivered;
  std::string bytes;
  std::string_view extension, media_type;
  switch (conversion->derivative) {
    case DerivativeKind::kText: {
      std::string text;
      for (const v1::worker::Record& record : result.records) {
        if (record.has_text()) text += record.text().utf8();
      }
      SafeText safe = MakeSafeText(text);
      if (safe.removed > 0) {
        AddFinding(item, finding::kTextStripped,
                   std::to_string(safe.removed) + " control or bidi characters removed");
        outcome = outcome::kDeliveredWithRemovals;
      }
      bytes = std::move(safe.text);
      extension = ".txt";
      media_type = "text/plain; charset=utf-8";
      break;
    }
    case DerivativeKind::kFlattenedPdf: {
      std::vector<PageImage> pages;
      for (const v1::worker::Record& record : result.records) {
        if (!record.has_pixels()) continue;
        const v1::worker::Pixels& p = record.pixels();
        pages.push_back({p.width(), p.height(), p.channels(), p.data()});
      }
      if (pages.empty()) {
        AddFinding(item, finding::kParseFailed, "the document produced no pages");
        return Hold(std::move(item), "quarantine");
      }
      // The worker rendered at the converter's resolution; the page size in
      // points follows from it.
      bytes = WriteFlattenedPdf(pages, PdfConverterOptions{}.dpi);
      extension = ".pdf";
      media_type = "application/pdf";
      break;
    }
  }
  v1::Derivative* derivative = item.add_derivatives();
  derivative->set_name(DerivativeName(name.name, extension));
  derivative->set_media_type(std::string(media_type));
  derivative->set_sha256(Sha256Hex(bytes));
  derivative->set_size(bytes.size());
  std::vector<std::string> derivatives;
  derivatives.push_back(std::move(bytes));
  return Finish(std::move(item), conversion->action, outcome, std::move(derivatives));
}

}  // namespace mugai

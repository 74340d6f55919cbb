// What to do with each real type. Anything not listed here is blocked: a
// type gets through only once a converter for it exists and is named here.
#pragma once

#include <optional>
#include <string_view>

namespace mugai {

// What the trusted side builds from a converter's records.
enum class DerivativeKind {
  kText,          // the Text records, cleaned, as UTF-8 text
  kFlattenedPdf,  // one image per Pixels record, as a PDF
  kImage,         // the one Pixels record, as PNG (JPEG for JPEG originals)
  // The converter's one Child is a PDF (LibreOffice's output, as untrusted
  // as the original), which is then flattened like any PDF.
  kFlattenedPdfOfChild,
  // The converter's Children are the archive's members, each sanitized as
  // an item of its own; their derivatives are delivered as one zip.
  kArchive,
};

// Which pool of workers runs the converter: LibreOffice needs a sandbox of
// its own (it execs and forks), see sanitizers/office/.
enum class WorkerKind { kConverter, kOffice };

struct Conversion {
  std::string_view converter;  // worker converter name
  std::string_view action;     // report action, e.g. "convert_text"
  DerivativeKind derivative;
  unsigned record_kinds;       // RecordKinds the converter may send
  WorkerKind workers = WorkerKind::kConverter;
};

// The conversion for a libmagic MIME type and description, or nullopt when
// the type is blocked (executables, scripts, unknown, and formats without a
// converter). The description matters only where libmagic's MIME type is
// generic for a format it does recognise (OOXML without the usual first
// member, which it calls application/octet-stream).
std::optional<Conversion> ConversionFor(std::string_view mime_type, std::string_view description = {});

}  // namespace mugai

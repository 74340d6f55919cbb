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
};

struct Conversion {
  std::string_view converter;  // worker converter name
  std::string_view action;     // report action, e.g. "convert_text"
  DerivativeKind derivative;
  unsigned record_kinds;       // RecordKinds the converter may send
};

// The conversion for a libmagic MIME type, or nullopt when the type is
// blocked (executables, scripts, unknown, and formats without a converter).
std::optional<Conversion> ConversionFor(std::string_view mime_type);

}  // namespace mugai

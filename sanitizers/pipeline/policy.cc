#include "sanitizers/pipeline/policy.h"

#include <array>
#include <utility>

#include "sanitizers/worker/record_validator.h"

namespace mugai {

std::optional<Conversion> ConversionFor(std::string_view mime_type) {
  static constexpr Conversion kText{"text", "convert_text", DerivativeKind::kText, kTextRecords};
  static constexpr Conversion kHtml{"html", "convert_html", DerivativeKind::kText, kTextRecords};
  static constexpr Conversion kPdf{"pdf", "convert_pdf", DerivativeKind::kFlattenedPdf,
                                   kPixelRecords};
  // An allow-list, deliberately: libmagic reports scripts as text/x-shellscript,
  // text/x-python and so on, and those must stay blocked.
  static constexpr std::array<std::pair<std::string_view, Conversion>, 5> kAllowed{{
      {"text/plain", kText},
      {"text/csv", kText},
      {"application/csv", kText},
      {"text/html", kHtml},
      {"application/pdf", kPdf},
  }};
  for (const auto& [type, conversion] : kAllowed) {
    if (type == mime_type) return conversion;
  }
  return std::nullopt;
}

}  // namespace mugai

#include "sanitizers/pipeline/policy.h"

#include <array>
#include <utility>

namespace mugai {

std::optional<Conversion> ConversionFor(std::string_view mime_type) {
  static constexpr Conversion kText{"text", "convert_text"};
  static constexpr Conversion kHtml{"html", "convert_html"};
  // An allow-list, deliberately: libmagic reports scripts as text/x-shellscript,
  // text/x-python and so on, and those must stay blocked.
  static constexpr std::array<std::pair<std::string_view, Conversion>, 4> kAllowed{{
      {"text/plain", kText},
      {"text/csv", kText},
      {"application/csv", kText},
      {"text/html", kHtml},
  }};
  for (const auto& [type, conversion] : kAllowed) {
    if (type == mime_type) return conversion;
  }
  return std::nullopt;
}

}  // namespace mugai

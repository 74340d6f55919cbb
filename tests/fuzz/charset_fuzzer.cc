// Charset conversion (uchardet + iconv) and the daemon's final text check.
// The input's first line, when it starts with "charset=", is the declared
// label (an HTML <meta>'s or a MIME parameter's), the rest the bytes.
// Contracts: every decoding never fails and gives valid UTF-8; MakeSafeText
// of that keeps it valid, with no control (but TAB and LF), bidi, BOM or
// interlinear annotation character left and no CR; MakeSafeLine has no
// line break or TAB either.
#include <glib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sanitizers/text/safe_text.h"
#include "sanitizers/text/text_converter.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

bool IsForbiddenInSafeText(gunichar c) {
  if (c < 0x20) return c != '\t' && c != '\n';
  return (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB);
}

void CheckSafe(const std::string& utf8) {
  FUZZ_ASSERT(mugai::IsValidUtf8(utf8));
  const std::string safe = mugai::MakeSafeText(utf8).text;
  FUZZ_ASSERT(mugai::IsValidUtf8(safe));
  const char* end = safe.data() + safe.size();
  for (const char* p = safe.data(); p < end; p = g_utf8_next_char(p)) {
    FUZZ_ASSERT(!IsForbiddenInSafeText(g_utf8_get_char(p)));
  }
  const std::string line = mugai::MakeSafeLine(utf8);
  FUZZ_ASSERT(mugai::IsValidUtf8(line));
  FUZZ_ASSERT(line.find_first_of("\r\n\t") == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kPrefix = "charset=";
  if (!input.starts_with(kPrefix)) {
    CheckSafe(mugai::DecodeToUtf8(input).utf8);
    return 0;
  }
  const size_t eol = input.find('\n');
  if (eol == std::string_view::npos) return 0;
  const std::string_view label = input.substr(kPrefix.size(), eol - kPrefix.size());
  const std::string_view bytes = input.substr(eol + 1);
  CheckSafe(mugai::DecodeToUtf8(bytes, label).utf8);
  CheckSafe(mugai::DecodeToUtf8CheckingLabel(bytes, label).utf8);
  return 0;
}

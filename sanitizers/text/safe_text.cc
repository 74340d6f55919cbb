#include "sanitizers/text/safe_text.h"

#include <glib.h>

#include <algorithm>
#include <stdexcept>

namespace mugai {
namespace {

// Characters a reader must never receive: they are invisible, or they
// reorder what is displayed ("invoice\u202Etxt.exe" shows as
// "invoiceexe.txt"), or they mean something to a terminal.
bool IsUnsafe(gunichar c) {
  if (c < 0x20) return c != '\t' && c != '\n';
  return (c >= 0x7F && c <= 0x9F) ||      // DEL and C1 controls
         (c >= 0x202A && c <= 0x202E) ||  // bidi embeddings and overrides
         (c >= 0x2066 && c <= 0x2069) ||  // bidi isolates
         c == 0xFEFF ||                   // byte-order mark
         (c >= 0xFFF9 && c <= 0xFFFB);    // interlinear annotation
}

}  // namespace

size_t ValidUtf8Prefix(std::string_view bytes) {
  // GLib validates strictly, but it stops at NUL, which is well-formed.
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  const char* stop = p;
  while (!g_utf8_validate_len(p, end - p, &stop) && *stop == '\0') p = stop + 1;
  return stop - bytes.data();
}

bool IsValidUtf8(std::string_view bytes) { return ValidUtf8Prefix(bytes) == bytes.size(); }

SafeText MakeSafeText(std::string_view utf8) {
  if (!IsValidUtf8(utf8)) throw std::invalid_argument("MakeSafeText: input is not valid UTF-8");
  SafeText safe;
  safe.text.reserve(utf8.size());
  const char* end = utf8.data() + utf8.size();
  for (const char* p = utf8.data(); p < end;) {
    const char* next = g_utf8_next_char(p);
    gunichar c = g_utf8_get_char(p);
    if (c == '\r') {
      safe.text += '\n';
      if (next < end && *next == '\n') ++next;
    } else if (IsUnsafe(c)) {
      ++safe.removed;
    } else {
      safe.text.append(p, next);
    }
    p = next;
  }
  return safe;
}

std::string MakeSafeLine(std::string_view utf8) {
  std::string text = MakeSafeText(utf8).text;
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\t'; }, ' ');
  return text;
}

}  // namespace mugai

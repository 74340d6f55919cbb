// The archive-name sanitizer (mugai_names) on names senders choose. The
// contract of names.h, checked on every result: MakeSafeName gives one
// path component; MakeSafePath at most 16 components joined with "/"; each
// component non-empty, the first no drive ("C:"), valid UTF-8, at most 200 bytes, no "/" or "\", not
// "." or "..", no leading dot or space, no trailing dot or space, and no
// control (C0, DEL, C1, TAB, LF) or bidi, BOM or interlinear annotation
// character; nothing Windows reads specially: no ':' (a drive, a data
// stream) and no device name (CON, NUL, COM1 ...) before the first dot.
// `changed` says whether the result differs from the claim.
// DerivativeName and UniquePath keep a safe name safe.
#include <glib.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

bool IsUnsafe(gunichar c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB);
}

void CheckComponent(std::string_view component) {
  FUZZ_ASSERT(!component.empty());
  FUZZ_ASSERT(component.size() <= 200);
  FUZZ_ASSERT(mugai::IsValidUtf8(component));
  FUZZ_ASSERT(component.find_first_of("/\\") == std::string_view::npos);
  FUZZ_ASSERT(component.front() != '.' && component.front() != ' ');
  FUZZ_ASSERT(component.back() != '.' && component.back() != ' ');
  FUZZ_ASSERT(component.find(':') == std::string_view::npos);
  std::string stem(component.substr(0, component.find('.')));
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  for (char& c : stem) c = g_ascii_toupper(c);
  static const std::set<std::string> kDevices = {"CON",  "PRN",  "AUX",  "NUL",  "COM1", "COM2", "COM3", "COM4",
                                                 "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3",
                                                 "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"};
  FUZZ_ASSERT(!kDevices.contains(stem));
  const char* end = component.data() + component.size();
  for (const char* p = component.data(); p < end; p = g_utf8_next_char(p)) {
    FUZZ_ASSERT(!IsUnsafe(g_utf8_get_char(p)));
  }
}

void CheckPath(std::string_view path) {
  // No leading drive: "C:/x" is absolute on Windows.
  FUZZ_ASSERT(!(path.size() >= 2 && path[1] == ':' && (path.size() == 2 || path[2] == '/')));
  size_t components = 0;
  for (size_t begin = 0;;) {
    const size_t slash = path.find('/', begin);
    CheckComponent(path.substr(begin, slash - begin));
    ++components;
    if (slash == std::string_view::npos) break;
    begin = slash + 1;
  }
  FUZZ_ASSERT(components <= 16);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view claimed(reinterpret_cast<const char*>(data), size);

  const mugai::SafeName name = mugai::MakeSafeName(claimed);
  CheckComponent(name.name);
  FUZZ_ASSERT(name.changed == (name.name != claimed));

  const mugai::SafeName path = mugai::MakeSafePath(claimed);
  CheckPath(path.name);
  FUZZ_ASSERT(path.changed == (path.name != claimed));

  // Made safe, a name stays as it is.
  FUZZ_ASSERT(mugai::MakeSafeName(name.name).name == name.name);
  FUZZ_ASSERT(mugai::MakeSafePath(path.name).name == path.name);

  std::set<std::string> taken{path.name};
  const std::string derivative = mugai::DerivativeName(path.name, ".pdf");
  FUZZ_ASSERT(mugai::IsValidUtf8(derivative));
  FUZZ_ASSERT(derivative.find('\\') == std::string::npos && !derivative.starts_with('/'));
  FUZZ_ASSERT(mugai::UniquePath(taken, path.name) != path.name);
  FUZZ_ASSERT(taken.size() == 2);
  return 0;
}

#include "sanitizers/pipeline/names.h"

#include <glib.h>

#include <algorithm>
#include <memory>

#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxPathComponents = 16;

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void TruncateUtf8(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
}

// `name` (valid UTF-8, one component) without control and bidi characters,
// leading dots and spaces, trailing dots and spaces; "" when nothing is left.
std::string CleanComponent(std::string name) {
  name = MakeSafeText(name).text;
  // MakeSafeText keeps TAB and LF, which have no place in a file name.
  std::erase_if(name, [](char c) { return c == '\t' || c == '\n'; });
  size_t begin = name.find_first_not_of(". ");
  name = begin == std::string::npos ? std::string() : name.substr(begin);
  // Cut first: a cut can end the name on a dot or a space.
  TruncateUtf8(name, kMaxNameBytes);
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
  return name;
}

// A component as Windows, where the receivers work, must not read it:
// "D:x" is a file in drive D's current folder and "x.txt:y" an alternate
// data stream of x.txt, so ':' becomes '_'; a device name (CON, NUL,
// COM1 ...), with any extension, opens the device, so it gets a leading '_'.
std::string WindowsSafe(std::string name) {
  std::replace(name.begin(), name.end(), ':', '_');
  std::string stem = name.substr(0, name.find('.'));
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();  // "CON .txt" is CON too
  for (char& c : stem) c = g_ascii_toupper(c);
  const bool numbered = stem.size() == 4 && (stem.starts_with("COM") || stem.starts_with("LPT")) &&
                        stem[3] >= '1' && stem[3] <= '9';
  if (numbered || stem == "CON" || stem == "PRN" || stem == "AUX" || stem == "NUL") {
    TruncateUtf8(name, kMaxNameBytes - 1);
    while (name.back() == '.' || name.back() == ' ') name.pop_back();
    name.insert(0, "_");
  }
  return name;
}

}  // namespace

std::string ToValidUtf8(std::string_view bytes) {
  std::unique_ptr<gchar, decltype(&g_free)> valid(
      g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size())), g_free);
  return valid.get();
}

SafeName MakeSafeName(std::string_view claimed) {
  std::string name = ToValidUtf8(claimed);
  if (size_t slash = name.find_last_of("/\\"); slash != std::string::npos) name.erase(0, slash + 1);
  name = CleanComponent(std::move(name));
  if (name.empty()) name = "unnamed";
  name = WindowsSafe(std::move(name));
  return {name, name != claimed};
}

SafeName MakeSafePath(std::string_view claimed) {
  const std::string valid = ToValidUtf8(claimed);
  std::string path;
  size_t components = 0;
  size_t begin = 0;
  while (begin <= valid.size() && components < kMaxPathComponents) {
    size_t end = valid.find_first_of("/\\", begin);
    if (end == std::string::npos) end = valid.size();
    std::string component = valid.substr(begin, end - begin);
    begin = end + 1;
    if (component == "..") continue;
    component = CleanComponent(std::move(component));
    // After cleaning: " C:" is a drive too once its space is gone.
    const bool drive = path.empty() && component.size() == 2 && component[1] == ':';
    if (drive || component.empty()) continue;
    if (!path.empty()) path += '/';
    path += WindowsSafe(std::move(component));
    ++components;
  }
  if (path.empty()) path = "unnamed";
  return {path, path != claimed};
}

std::string DerivativeName(std::string_view safe_name, std::string_view extension) {
  std::string_view stem = safe_name;
  // Only the last component's extension: "v1.2/readme" has none.
  const size_t leaf = stem.rfind('/') == std::string_view::npos ? 0 : stem.rfind('/') + 1;
  if (size_t dot = stem.rfind('.'); dot != std::string_view::npos && dot > leaf) stem = stem.substr(0, dot);
  return std::string(stem) + std::string(extension);
}

std::string UniquePath(std::set<std::string>& taken, const std::string& path) {
  if (taken.insert(path).second) return path;
  const size_t slash = path.rfind('/');
  const size_t leaf = slash == std::string::npos ? 0 : slash + 1;
  size_t dot = path.rfind('.');
  if (dot == std::string::npos || dot <= leaf) dot = path.size();
  for (unsigned n = 2;; ++n) {
    std::string candidate = path.substr(0, dot) + " (" + std::to_string(n) + ")" + path.substr(dot);
    if (taken.insert(candidate).second) return candidate;
  }
}

}  // namespace mugai

#include "sanitizers/pipeline/names.h"

#include <glib.h>

#include <memory>

#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

constexpr size_t kMaxNameBytes = 200;

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void TruncateUtf8(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
}

}  // namespace

std::string ToValidUtf8(std::string_view bytes) {
  std::unique_ptr<gchar, decltype(&g_free)> valid(
      g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size())), g_free);
  return valid.get();
}

SafeName MakeSafeName(std::string_view claimed) {
  std::string name = MakeSafeText(ToValidUtf8(claimed)).text;
  // MakeSafeText keeps TAB and LF, which have no place in a file name.
  std::erase_if(name, [](char c) { return c == '\t' || c == '\n'; });
  if (size_t slash = name.find_last_of("/\\"); slash != std::string::npos) name.erase(0, slash + 1);
  size_t begin = name.find_first_not_of(". ");
  name = begin == std::string::npos ? std::string() : name.substr(begin);
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
  TruncateUtf8(name, kMaxNameBytes);
  if (name.empty()) name = "unnamed";
  return {name, name != claimed};
}

std::string DerivativeName(std::string_view safe_name, std::string_view extension) {
  std::string_view stem = safe_name;
  if (size_t dot = stem.rfind('.'); dot != std::string_view::npos && dot > 0) stem = stem.substr(0, dot);
  return std::string(stem) + std::string(extension);
}

}  // namespace mugai

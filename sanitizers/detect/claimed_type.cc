#include "sanitizers/detect/claimed_type.h"

#include <gio/gio.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "sanitizers/core/glib_handles.h"

namespace mugai {
namespace {

using OwnedString = GMallocPtr<gchar>;

// Untrusted text quoted for a reason line: invalid UTF-8 becomes U+FFFD, and
// controls and format characters (bidi overrides, zero-width characters) are
// shown as \u{...} escapes, so a name can neither disguise itself nor break
// the line for whoever reads the report.
std::string Quote(std::string_view text) {
  OwnedString valid(g_utf8_make_valid(text.data(), static_cast<gssize>(text.size())));
  std::string out = "\"";
  for (const gchar* p = valid.get(); *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    GUnicodeType type = g_unichar_type(c);
    if (type == G_UNICODE_CONTROL || type == G_UNICODE_FORMAT) {
      char escape[16];
      std::snprintf(escape, sizeof escape, "\\u{%04X}", static_cast<unsigned>(c));
      out += escape;
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out.append(p, static_cast<size_t>(g_utf8_next_char(p) - p));
    }
  }
  return out + "\"";
}

// libmagic names a few types that shared-mime-info (2.2) does not know under
// any alias; without these, correctly named .exe, .sh and .slk files would
// be mismatches.
std::string_view SharedMimeInfoName(std::string_view libmagic_mime) {
  static constexpr std::pair<std::string_view, std::string_view> kBridge[] = {
      {"application/vnd.microsoft.portable-executable", "application/x-ms-dos-executable"},
      {"application/x-dosexec", "application/x-ms-dos-executable"},
      {"application/x-sylk", "text/spreadsheet"},
      {"text/x-shellscript", "application/x-shellscript"},
  };
  for (auto [from, to] : kBridge) {
    if (libmagic_mime == from) return to;
  }
  return libmagic_mime;
}

// The shared-mime-info content type for a MIME type, aliases resolved
// (application/x-rar -> application/vnd.rar).
OwnedString ContentType(std::string_view mime) {
  std::string name(SharedMimeInfoName(mime));
  OwnedString type(g_content_type_from_mime_type(name.c_str()));
  return type ? std::move(type) : OwnedString(g_strdup(name.c_str()));
}

// True when one type is the other or a subclass of it, in either direction:
// a CSV file is text/plain, and a .txt may hold CSV.
bool Compatible(const std::string& claimed_mime, const std::string& detected_mime) {
  OwnedString claimed = ContentType(claimed_mime);
  OwnedString real = ContentType(detected_mime);
  return g_content_type_equals(claimed.get(), real.get()) ||
         g_content_type_is_a(claimed.get(), real.get()) ||
         g_content_type_is_a(real.get(), claimed.get());
}

bool TooVague(std::string_view mime) { return mime.empty() || mime == "application/octet-stream"; }

// The type the name suggests, or "" when the name does not say (no known
// extension, or several types share it, as *.html does with XHTML).
std::string TypeOfName(std::string_view name) {
  gboolean uncertain = FALSE;
  OwnedString type(g_content_type_guess(std::string(name).c_str(), nullptr, 0, &uncertain));
  // On Unix a GIO content type is a MIME type.
  return uncertain || !type ? "" : type.get();
}

// "Text/Plain; charset=utf-8" -> "text/plain".
std::string NormalizeDeclared(std::string_view declared) {
  declared = declared.substr(0, declared.find(';'));
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = declared.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return "";
  declared = declared.substr(begin, declared.find_last_not_of(kSpace) - begin + 1);
  std::string out(declared);
  for (char& c : out) c = g_ascii_tolower(c);
  return out;
}

}  // namespace

std::optional<std::string> DescribeTypeMismatch(std::string_view claimed_name,
                                                std::string_view declared_type,
                                                std::string_view detected_mime) {
  const std::string detected(detected_mime);
  std::string reasons;
  auto add = [&reasons](const std::string& reason) {
    if (!reasons.empty()) reasons += "; ";
    reasons += reason;
  };
  if (!claimed_name.empty()) {
    std::string by_name = TypeOfName(claimed_name);
    if (!TooVague(by_name) && !Compatible(by_name, detected)) {
      add("name " + Quote(claimed_name) + " claims " + by_name + ", content is " + detected);
    }
  }
  std::string declared = NormalizeDeclared(declared_type);
  if (!TooVague(declared) && !Compatible(declared, detected)) {
    add("declared type " + Quote(declared) + ", content is " + detected);
  }
  if (reasons.empty()) return std::nullopt;
  return reasons;
}

}  // namespace mugai

// Names from senders are untrusted text: they may carry paths, control and
// bidi characters ("invoice\u202Etxt.exe"), invalid UTF-8, or nothing.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace mugai {

// `bytes` as valid UTF-8: invalid sequences become U+FFFD. For reports.
std::string ToValidUtf8(std::string_view bytes);

struct SafeName {
  std::string name;      // a single path component, printable, never empty
  bool changed = false;  // differs from the claimed name
};

// The last path component (either separator), without control or bidi
// characters, without leading dots or spaces or trailing dots and spaces,
// at most 200 bytes; "unnamed" when nothing is left. Safe on Windows too:
// ':' (a drive, an alternate data stream) becomes '_', and a device name
// (CON, NUL, COM1 ..., with any extension) gets a leading '_'.
SafeName MakeSafeName(std::string_view claimed);

// An archive member's path, made safe to recreate anywhere: both
// separators split it, empty, "." and ".." components and a leading drive
// ("C:") are dropped (so it can never leave the archive or be absolute),
// and every component is made safe as by MakeSafeName. At most 16
// components; "unnamed" when nothing is left. Joined with "/".
SafeName MakeSafePath(std::string_view claimed);

// The derivative's name: `safe_name` (a name or a safe path) with the
// extension of its last component replaced by `extension` (which includes
// the dot).
std::string DerivativeName(std::string_view safe_name, std::string_view extension);

// `path`, or "name (2).ext" and so on when `taken` has it already (a.doc
// and a.docx both become a.pdf); the result is added to `taken`.
std::string UniquePath(std::set<std::string>& taken, const std::string& path);

}  // namespace mugai

// Trusted side: the last step before text reaches a reader. Workers send
// text, but a compromised worker could send anything, so the daemon checks
// and cleans it here, whatever converter produced it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mugai {

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, no
// code points above U+10FFFF). NUL is well-formed; MakeSafeText removes it.
bool IsValidUtf8(std::string_view bytes);

// Length of the longest prefix of `bytes` that is well-formed UTF-8.
size_t ValidUtf8Prefix(std::string_view bytes);

struct SafeText {
  std::string text;
  size_t removed = 0;  // characters dropped (CR of a CRLF pair not counted)
};

// Requires IsValidUtf8(utf8). Line ends become LF (CRLF and lone CR); keeps
// TAB and LF; removes every other C0 and C1 control, DEL, the bidi
// embedding / override / isolate controls (U+202A..U+202E, U+2066..U+2069),
// the byte-order mark U+FEFF and the interlinear annotation controls
// U+FFF9..U+FFFB. Throws std::invalid_argument when `utf8` is not valid, so a
// caller that forgot the check fails closed.
SafeText MakeSafeText(std::string_view utf8);

// MakeSafeText's text on one line, LF and TAB as spaces: for a header value
// or an address, which is never a place for a line break.
std::string MakeSafeLine(std::string_view utf8);

}  // namespace mugai

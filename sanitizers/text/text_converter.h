// Plain text and CSV, in the worker: detects the charset (uchardet) and
// converts to UTF-8 (iconv). Shift_JIS is decoded as CP932 (its Windows
// superset, what Japanese senders actually use); EUC-JP, ISO-2022-JP,
// UTF-16 (with or without BOM) and UTF-8 come out right.
#pragma once

#include <string>
#include <string_view>

#include "sanitizers/worker/converter.h"

namespace mugai {

struct DecodedText {
  std::string utf8;
  std::string charset;           // what was used to decode, e.g. "CP932"
  size_t invalid_sequences = 0;  // undecodable bytes, each replaced by U+FFFD
  // A charset was declared but `charset` is another: the label is not one
  // iconv knows, a byte-order mark said otherwise, or (with
  // DecodeToUtf8CheckingLabel) the bytes are plainly not in it.
  bool declared_ignored = false;
};

// Never fails on any input: bytes that do not decode become U+FFFD. (Throws
// std::runtime_error only on a system whose iconv lacks UTF-8 or CP932.)
DecodedText DecodeToUtf8(std::string_view bytes);

// The same, for bytes whose container names a charset (an HTML <meta>, a
// MIME charset parameter). A byte-order mark still wins over `declared`, and
// a label iconv does not know is ignored. Japanese labels get the same
// Windows supersets as detected charsets (Shift_JIS decodes as CP932).
DecodedText DecodeToUtf8(std::string_view bytes, std::string_view declared);

// The same, for labels that are often wrong (mail parts and headers): the
// detected charset wins, with declared_ignored set, when the declared one
// leaves more bytes undecodable than the detected one, or when a
// single-byte Western label (ISO-8859-x, windows-125x) covers 8-bit bytes
// that come in pairs and are valid UTF-8 or read cleanly as Japanese (CP932
// or EUC-JP), as UTF-8 and Japanese text do and Western text, its accented
// letters alone between ASCII ones, does not.
DecodedText DecodeToUtf8CheckingLabel(std::string_view bytes, std::string_view declared);

// Emits `utf8` as the one Text record of a text converter, or, when it is
// longer than input.max_output_bytes, a limit.output finding and no text: a
// silently truncated text would deliver part of a document as if it were
// all of it.
void EmitText(const ConvertInput& input, std::string utf8, RecordSink& sink);

// Emits one Text record, plus a text.invalid_bytes finding when some bytes
// did not decode.
class TextConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai

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
};

// Never fails: bytes that do not decode become U+FFFD.
DecodedText DecodeToUtf8(std::string_view bytes);

// Emits one Text record, plus a text.invalid_bytes finding when some bytes
// did not decode.
class TextConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai

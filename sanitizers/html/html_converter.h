// HTML to plain text, in the worker, with libxml2's HTML parser (recover
// mode, no network, no entity loading). Scripts, styles, comments and other
// non-content are dropped; block elements become line breaks; links become
// "text <url>"; images become "[image: alt]"; entities are decoded.
#pragma once

#include <string>
#include <string_view>

#include "sanitizers/worker/converter.h"

namespace mugai {

// Returns UTF-8 text. The charset comes from the document (BOM, <meta>), and
// from uchardet when the document does not say. Link URLs are shown only for
// http, https, ftp and mailto, and not when the link text already is the
// URL. Throws ConvertError when libxml2 gives up part way (elements nested
// deeper than its limit of 256, say) rather than pass part for the whole.
std::string HtmlToText(std::string_view html);

// Emits one Text record.
class HtmlConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai

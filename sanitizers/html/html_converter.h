// HTML to plain text, in the worker, with libxml2's HTML parser (recover
// mode, no network, no entity loading). Scripts, styles, comments and other
// non-content are dropped; block elements become line breaks; links become
// "text <url>"; images become "[image: alt]"; entities are decoded.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sanitizers/worker/converter.h"

namespace mugai {

// Returns UTF-8 text. The charset comes from the document (BOM, <meta>), and
// from uchardet when the document does not say. Link URLs are shown only for
// http, https, ftp and mailto, and not when the link text already is the
// URL. Throws ConvertError when libxml2 gives up part way (elements nested
// deeper than its limit of 256, say) rather than pass part for the whole.
std::string HtmlToText(std::string_view html);

// A link whose text shows one web address and that leads to another: the
// usual phishing lure ("https://bank.example" leading to evil.example).
struct DeceptiveLink {
  std::string shown;   // the link text, as the reader sees it
  std::string target;  // the URL it leads to, as the text shows it after the link
};

struct RenderedHtml {
  std::string text;  // as HtmlToText makes it
  // Links whose text looks like a URL or a host name (http(s)://...,
  // www...., a dotted domain name) other than the host of the URL they
  // lead to. "www." on either side, and a target within the shown domain
  // (login.bank.example for bank.example), count as the same host.
  std::vector<DeceptiveLink> deceptive_links;
};

// HtmlToText for a document already decoded to UTF-8 (a mail part, whose
// charset its MIME header gave): no charset is looked for or applied.
RenderedHtml RenderUtf8Html(std::string_view utf8);

// The charset a document declares in a <meta> near its start, as browsers
// find it before parsing, or "" when it declares none.
std::string HtmlMetaCharset(std::string_view html);

// Emits one Text record.
class HtmlConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai

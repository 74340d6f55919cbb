// The HTML-to-text converter (libxml2) on untrusted documents: HtmlToText
// on the raw bytes (charset from BOM, <meta> or uchardet) and
// RenderUtf8Html on the bytes made valid UTF-8, as the mail converter calls
// it. Whatever the document, the text is valid UTF-8 (the daemon rejects
// anything else as a worker violation), and so is every deceptive link.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sanitizers/html/html_converter.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view html(reinterpret_cast<const char*>(data), size);
  try {
    FUZZ_ASSERT(mugai::IsValidUtf8(mugai::HtmlToText(html)));
  } catch (const mugai::ConvertError&) {
    // Documented: libxml2 gave up part way.
  }
  try {
    mugai::RenderedHtml rendered = mugai::RenderUtf8Html(mugai::ToValidUtf8(html));
    FUZZ_ASSERT(mugai::IsValidUtf8(rendered.text));
    for (const mugai::DeceptiveLink& link : rendered.deceptive_links) {
      FUZZ_ASSERT(mugai::IsValidUtf8(link.shown));
      FUZZ_ASSERT(mugai::IsValidUtf8(link.target));
    }
  } catch (const mugai::ConvertError&) {
    // The same.
  }
  return 0;
}

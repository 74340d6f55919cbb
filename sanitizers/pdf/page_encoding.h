// Trusted side: chooses how each page image of a flattened PDF is stored, so
// derivatives stay small without losing legibility. Dangerzone stores every
// page as deflated RGB; here a page is stored
//   - as an exact palette (1, 2 or 4 bits a pixel, lossless) when it has at
//     most 16 colours;
//   - else, when it is text, a form or line art (a few colours cover nearly
//     all of it, see min_top_colors_share), as a palette chosen by
//     libimagequant without dithering: gray_palette_colors colours when it
//     is (nearly) all gray, palette_colors when it has colour, so a red
//     seal or heading keeps its colour. Anti-aliased edges are remapped to
//     the nearest palette colour; text stays as legible as it was.
//   - else (photographs, scans) as JPEG, grayscale when the page is gray.
// Palettes are deflated (libdeflate); the PDF writer embeds the streams as
// they are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sanitizers/core/pixels.h"

namespace mugai {

struct PageEncodingOptions {
  int palette_colors = 16;      // 2..256, pages with colour
  int gray_palette_colors = 4;  // 2..256, gray pages
  // A page whose 16 most common colours cover less than this share of it is
  // photographic.
  double min_top_colors_share = 0.94;
  // A page with less than this share of clearly coloured pixels is gray: an
  // A4 page at 150 DPI has 2.2 million pixels, so 0.0005 is about a 7 mm
  // square, smaller than a seal (inkan).
  double max_gray_chromatic_share = 0.0005;
  int jpeg_quality = 75;        // 1..100, libjpeg's own default
};

// One page image, ready to be a PDF image XObject.
struct EncodedPage {
  uint32_t width = 0, height = 0;
  enum class Filter { kFlate, kDct } filter = Filter::kFlate;
  // Samples per pixel of the decoded stream: 1 for gray and indexed images,
  // 3 for RGB.
  uint32_t channels = 1;
  uint32_t bits_per_component = 8;  // 1, 2, 4 or 8
  std::string palette;  // RGB triples; non-empty: an Indexed colour space
  std::string data;     // the stream, compressed as `filter` says
  // "palette", "quantized", "quantized-gray", "jpeg" or "jpeg-gray"
  std::string_view encoding;
};

// Throws std::invalid_argument for a malformed view or options,
// std::bad_alloc when out of memory and std::runtime_error when an encoder
// fails.
EncodedPage EncodePage(const PixelView& page, const PageEncodingOptions& options = {});

}  // namespace mugai

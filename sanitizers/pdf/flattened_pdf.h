// Trusted side: writes the flattened PDF that replaces a document, from the
// page images a worker rendered (sanitizers/pdf/pdf_converter.h). Its input
// is primitive data only, so whatever the original contained, the output
// holds nothing but one image per page: no text, fonts, links, annotations,
// forms, scripts, attachments or metadata of the original (cairo adds its
// own /Producer and /CreationDate).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mugai {

// One page as pixels, row-major: channels 1 (gray), 3 (RGB) or 4 (RGBA, not
// premultiplied; composited onto white).
struct PageImage {
  uint32_t width, height, channels;
  std::string_view data;  // width * height * channels bytes
};

// Returns a PDF with one page per image, in order, each page
// width * 72 / dpi by height * 72 / dpi points and filled by its image.
// Requires a non-empty `pages`, dpi > 0 and every image well-formed (the
// daemon validated them already); throws std::invalid_argument otherwise, so
// a caller that skipped the check fails closed. Throws std::runtime_error
// when cairo fails (std::bad_alloc when it runs out of memory), including
// for an image wider or taller than cairo's 32767 pixels.
std::string WriteFlattenedPdf(const std::vector<PageImage>& pages, double dpi);

}  // namespace mugai

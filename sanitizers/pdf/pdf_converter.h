// PDF to page images, in the worker: Poppler (its GLib front end) renders
// every page with cairo onto a white RGB canvas, and each page leaves the
// worker as one Pixels record (3 channels, row-major). Nothing else of the
// document comes out: no text, links, forms, scripts or attachments. The
// trusted side writes the flattened PDF from these pixels
// (sanitizers/pdf/flattened_pdf.h).
#pragma once

#include <cstdint>

#include "sanitizers/worker/converter.h"

namespace mugai {

struct PdfConverterOptions {
  // Resolution of the page images. A page of W x H points becomes
  // round(W * dpi / 72) x round(H * dpi / 72) pixels (at least 1 x 1), so the
  // daemon recovers its size in points as pixels * 72 / dpi. In (0, 2400].
  double dpi = 150;
  // A document with more pages gets a limit.pages finding and no pixels.
  uint32_t max_pages = 1000;
  // Width * height of one page image. A document with a larger page (at
  // `dpi`) gets a limit.pixels finding and no pixels: pages are never shrunk
  // to fit, which would deliver an unreadable copy as if it were the
  // document. The default fits A0 at 150 DPI (35 million pixels).
  uint64_t max_page_pixels = 40'000'000;
  // Width or height of one page image. Dangerzone's limit: a page of more
  // than 10000 pixels a side at 150 DPI is 1.7 m long, a crafted page rather
  // than a document (A0 is 7022 pixels high).
  uint32_t max_page_side = 10'000;
  // Width * height of all the pages together, limit.pixels too. The daemon
  // accepts so many pixel bytes per job (RecordLimits::max_pixel_bytes), and a
  // document over it should hear why before any page is rendered, not be
  // cut off part way as a misbehaving worker. The default matches the
  // daemon's default of 1 GiB at 3 bytes a pixel: about 160 A4 pages.
  uint64_t max_total_pixels = (uint64_t{1} << 30) / 3;
};

// The job's RenderOptions override these field by field (a zero field keeps
// the value here); with page_shards > 1 only the job's share of the pages is
// rendered, though the limits are checked on the whole document, so every
// shard of a document reports the same finding.
//
// Emits one Pixels record per page (of its shard), in page order, or else exactly one
// finding and no pixels:
//   document.encrypted  the document needs a password to open (documents
//                       with only an owner password open and are rendered)
//   limit.pages         more than max_pages pages
//   limit.pixels        a page over max_page_pixels, or wider or taller than
//                       max_page_side (or cairo's 32767 pixels), or all pages
//                       together over max_total_pixels
// Every page's size is checked before the first is rendered. Throws
// ConvertError when Poppler cannot open the document, when it has no pages,
// and when rendering a page fails.
class PdfConverter : public Converter {
 public:
  // Throws std::invalid_argument when options.dpi is out of range.
  explicit PdfConverter(PdfConverterOptions options = {});

  void Convert(const ConvertInput& input, RecordSink& sink) override;

 private:
  PdfConverterOptions options_;
};

}  // namespace mugai

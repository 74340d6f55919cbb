#include "sanitizers/pdf/pdf_converter.h"

#include <cairo.h>
#include <poppler.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "sanitizers/core/glib_handles.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/pdf/cairo_handles.h"

namespace mugai {
namespace {

// Poppler 22.12 declares no g_autoptr cleanups for its types.
using UniqueDocument = GObjectPtr<PopplerDocument>;
using UniquePage = GObjectPtr<PopplerPage>;

// cairo's image surfaces are limited to this many pixels a side.
constexpr double kCairoMaxSide = 32767;

struct PageSize {
  double width_pt, height_pt;
  uint32_t width, height;  // pixels
};

// Out of memory becomes bad_alloc, which the worker reports as
// limit.memory; anything else is a failure to convert.
void CheckCairo(cairo_status_t status, int page_number) {
  if (status == CAIRO_STATUS_SUCCESS) return;
  if (status == CAIRO_STATUS_NO_MEMORY) throw std::bad_alloc();
  throw ConvertError("cannot render page " + std::to_string(page_number) + ": " + cairo_status_to_string(status));
}

UniquePage GetPage(PopplerDocument* doc, int index) {
  UniquePage page(poppler_document_get_page(doc, index));
  if (!page) throw ConvertError("cannot read page " + std::to_string(index + 1) + " of the PDF");
  return page;
}

// Renders `page` onto a white canvas of size.width x size.height pixels,
// the page stretched to fill it exactly (the rounding to whole pixels
// distorts the aspect ratio by less than a pixel), and returns the Pixels
// record.
v1::worker::Record Render(PopplerPage* page, const PageSize& size, int page_number) {
  UniqueSurface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, size.width, size.height));
  CheckCairo(cairo_surface_status(surface.get()), page_number);
  UniqueContext cr(cairo_create(surface.get()));
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  cairo_scale(cr.get(), size.width / size.width_pt, size.height / size.height_pt);
  poppler_page_render(page, cr.get());
  CheckCairo(cairo_status(cr.get()), page_number);
  cairo_surface_flush(surface.get());

  v1::worker::Record record = PixelsRecord(size.width, size.height, 3);
  std::string* rgb = record.mutable_pixels()->mutable_data();
  // RGB24 is one native-endian 32-bit word per pixel, its top byte unused;
  // the canvas is opaque, so there is no premultiplied alpha to undo.
  const unsigned char* rows = cairo_image_surface_get_data(surface.get());
  const size_t stride = cairo_image_surface_get_stride(surface.get());
  char* out = rgb->data();
  for (uint32_t y = 0; y < size.height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(rows + y * stride);
    for (uint32_t x = 0; x < size.width; ++x) {
      uint32_t word = row[x];
      *out++ = static_cast<char>(word >> 16);
      *out++ = static_cast<char>(word >> 8);
      *out++ = static_cast<char>(word);
    }
  }
  return record;
}

// The job's options over the converter's own; zero fields keep ours.
PdfConverterOptions ForJob(PdfConverterOptions options, const v1::worker::RenderOptions& render) {
  if (render.dpi() != 0) options.dpi = render.dpi();
  if (render.max_pages() != 0) options.max_pages = render.max_pages();
  if (render.max_page_pixels() != 0) options.max_page_pixels = render.max_page_pixels();
  if (render.max_total_pixels() != 0) options.max_total_pixels = render.max_total_pixels();
  if (render.max_page_side() != 0) options.max_page_side = render.max_page_side();
  return options;
}

bool ValidDpi(double dpi) { return dpi > 0 && dpi <= 2400; }

}  // namespace

PdfConverter::PdfConverter(PdfConverterOptions options) : options_(options) {
  if (!ValidDpi(options_.dpi)) throw std::invalid_argument("PDF rendering DPI out of range");
}

void PdfConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  const PdfConverterOptions options = ForJob(options_, input.render);
  if (!ValidDpi(options.dpi)) throw ConvertError("PDF rendering DPI out of range");
  const uint32_t shards = std::max(1u, input.render.page_shards());
  const uint32_t shard = input.render.page_shard();
  if (shard >= shards) throw ConvertError("page shard out of range");

  // Poppler reads the job's bytes where they are; `doc` is gone before
  // they are.
  g_autoptr(GBytes) bytes = g_bytes_new_static(input.content.data(), input.content.size());
  g_autoptr(GError) error = nullptr;
  UniqueDocument doc(poppler_document_new_from_bytes(bytes, nullptr, &error));
  if (!doc) {
    if (error && g_error_matches(error, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED)) {
      sink.Finding(finding::kDocumentEncrypted,
                   "the PDF is encrypted with a password to open it, so it cannot be inspected");
      return;
    }
    throw ConvertError(std::string("cannot open the PDF: ") + (error ? error->message : "unknown error"));
  }

  const int page_count = poppler_document_get_n_pages(doc.get());
  if (page_count <= 0) throw ConvertError("the PDF has no pages");
  if (static_cast<uint64_t>(page_count) > options.max_pages) {
    sink.Finding(finding::kLimitPages, "the PDF has " + std::to_string(page_count) + " pages, more than the limit of " +
                                    std::to_string(options.max_pages));
    return;
  }

  // Every page is measured before any is rendered, so an oversized last
  // page costs no rendering of the others.
  std::vector<PageSize> sizes;
  sizes.reserve(page_count);
  const double scale = options.dpi / 72;
  uint64_t total_pixels = 0;
  for (int i = 0; i < page_count; ++i) {
    PageSize size{};
    poppler_page_get_size(GetPage(doc.get(), i).get(), &size.width_pt, &size.height_pt);
    if (!(size.width_pt > 0 && size.height_pt > 0 && std::isfinite(size.width_pt) &&
          std::isfinite(size.height_pt))) {
      throw ConvertError("page " + std::to_string(i + 1) + " of the PDF has no size");
    }
    const double width = std::max(1.0, std::round(size.width_pt * scale));
    const double height = std::max(1.0, std::round(size.height_pt * scale));
    const double max_side = std::min<double>(kCairoMaxSide, options.max_page_side);
    if (width > max_side || height > max_side ||
        width * height > static_cast<double>(options.max_page_pixels)) {
      sink.Finding(finding::kLimitPixels,
                   "page " + std::to_string(i + 1) + " would be " + std::to_string(static_cast<uint64_t>(width)) +
                       " x " + std::to_string(static_cast<uint64_t>(height)) + " pixels at " +
                       std::to_string(std::lround(options.dpi)) + " DPI, more than the limit of " +
                       std::to_string(options.max_page_pixels) + " pixels or " +
                       std::to_string(static_cast<int>(max_side)) + " a side");
      return;
    }
    size.width = static_cast<uint32_t>(width);
    size.height = static_cast<uint32_t>(height);
    sizes.push_back(size);
    total_pixels += uint64_t{size.width} * size.height;
  }
  if (total_pixels > options.max_total_pixels) {
    sink.Finding(finding::kLimitPixels, "the PDF's " + std::to_string(page_count) + " pages would be " +
                                            std::to_string(total_pixels) + " pixels at " +
                                            std::to_string(std::lround(options.dpi)) +
                                            " DPI, more than the limit of " +
                                            std::to_string(options.max_total_pixels));
    return;
  }

  for (int i = static_cast<int>(shard); i < page_count; i += static_cast<int>(shards)) {
    sink.Emit(Render(GetPage(doc.get(), i).get(), sizes[i], i + 1));
  }
}

}  // namespace mugai

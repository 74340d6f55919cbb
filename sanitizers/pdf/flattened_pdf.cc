#include "sanitizers/pdf/flattened_pdf.h"

#include <cairo-pdf.h>
#include <cairo.h>

#include <cmath>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "sanitizers/pdf/cairo_handles.h"

namespace mugai {
namespace {

void CheckCairo(cairo_status_t status) {
  if (status == CAIRO_STATUS_SUCCESS) return;
  if (status == CAIRO_STATUS_NO_MEMORY) throw std::bad_alloc();
  throw std::runtime_error(std::string("cannot write the flattened PDF: ") + cairo_status_to_string(status));
}

// Where cairo's PDF stream goes. An exception must not unwind through
// cairo's C frames, so running out of memory is noted here and rethrown
// once cairo has returned.
struct Output {
  std::string bytes;
  bool out_of_memory = false;
};

cairo_status_t Append(void* closure, const unsigned char* data, unsigned int length) {
  auto* output = static_cast<Output*>(closure);
  try {
    output->bytes.append(reinterpret_cast<const char*>(data), length);
    return CAIRO_STATUS_SUCCESS;
  } catch (const std::bad_alloc&) {
    output->out_of_memory = true;
    return CAIRO_STATUS_WRITE_ERROR;
  }
}

void CheckImage(const PageImage& page) {
  if (page.width == 0 || page.height == 0) throw std::invalid_argument("page image with an empty dimension");
  if (page.channels != 1 && page.channels != 3 && page.channels != 4) {
    throw std::invalid_argument("page image with " + std::to_string(page.channels) + " channels");
  }
  if (page.data.size() != uint64_t{page.width} * page.height * page.channels) {
    throw std::invalid_argument("page image data does not match its dimensions");
  }
}

// Alpha-composites one channel onto white.
uint32_t OnWhite(uint32_t value, uint32_t alpha) { return (value * alpha + 255 * (255 - alpha) + 127) / 255; }

// The page as an opaque cairo image. RGB24 whatever the input: cairo's PDF
// surface itself writes an image whose pixels are all gray as DeviceGray (and
// all black-or-white as 1 bit per pixel), so gray pages stay small. Choosing
// an encoding per page (a palette, or JPEG for photographs, which cairo
// embeds as given when attached as CAIRO_MIME_TYPE_JPEG) is a later step.
UniqueSurface ToCairoImage(const PageImage& page) {
  UniqueSurface image(cairo_image_surface_create(CAIRO_FORMAT_RGB24, page.width, page.height));
  CheckCairo(cairo_surface_status(image.get()));
  unsigned char* rows = cairo_image_surface_get_data(image.get());
  const size_t stride = cairo_image_surface_get_stride(image.get());
  const auto* in = reinterpret_cast<const unsigned char*>(page.data.data());
  for (uint32_t y = 0; y < page.height; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(rows + y * stride);
    for (uint32_t x = 0; x < page.width; ++x, in += page.channels) {
      uint32_t r = in[0], g = in[0], b = in[0];
      if (page.channels >= 3) {
        g = in[1];
        b = in[2];
      }
      if (page.channels == 4) {
        r = OnWhite(r, in[3]);
        g = OnWhite(g, in[3]);
        b = OnWhite(b, in[3]);
      }
      row[x] = r << 16 | g << 8 | b;
    }
  }
  cairo_surface_mark_dirty(image.get());
  return image;
}

}  // namespace

std::string WriteFlattenedPdf(const std::vector<PageImage>& pages, double dpi) {
  if (pages.empty()) throw std::invalid_argument("a flattened PDF needs at least one page");
  if (!(dpi > 0 && std::isfinite(dpi))) throw std::invalid_argument("flattened PDF DPI out of range");
  for (const PageImage& page : pages) CheckImage(page);

  const double scale = 72 / dpi;
  Output output;
  auto check = [&output](cairo_status_t status) {
    if (output.out_of_memory) throw std::bad_alloc();
    CheckCairo(status);
  };
  {
    UniqueSurface pdf(cairo_pdf_surface_create_for_stream(Append, &output, pages[0].width * scale,
                                                          pages[0].height * scale));
    CheckCairo(cairo_surface_status(pdf.get()));
    UniqueContext cr(cairo_create(pdf.get()));
    for (const PageImage& page : pages) {
      cairo_pdf_surface_set_size(pdf.get(), page.width * scale, page.height * scale);
      UniqueSurface image = ToCairoImage(page);
      cairo_save(cr.get());
      cairo_scale(cr.get(), scale, scale);
      cairo_set_source_surface(cr.get(), image.get(), 0, 0);
      cairo_paint(cr.get());
      cairo_restore(cr.get());
      // Writes the page out, so only one page's image is held at a time.
      cairo_show_page(cr.get());
      check(cairo_status(cr.get()));
    }
    cr.reset();
    cairo_surface_finish(pdf.get());
    check(cairo_surface_status(pdf.get()));
  }
  return std::move(output.bytes);
}

}  // namespace mugai

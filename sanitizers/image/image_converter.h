// Images to pixels, in the worker: libvips decodes PNG, JPEG, GIF, TIFF,
// WebP, PBM/PGM/PPM/PNM and SVG (rendered; never passed through) from the
// job's bytes, gdk-pixbuf decodes BMP (libvips 8.14 reads BMP only through
// ImageMagick, which stays blocked). The image leaves the worker as ONE
// Pixels record: 8-bit sRGB, row-major, 1 channel (gray), 3 (RGB) or 4
// (RGBA, not premultiplied). Nothing else of the file comes out: no EXIF,
// GPS, XMP, comments, ICC profile, further frames or pages. The trusted side
// re-encodes these pixels (sanitizers/image/image_encoder.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sanitizers/worker/converter.h"

namespace mugai {

struct ImageConverterOptions {
  // Width * height of the image, after SVG rendering. A larger image gets a
  // limit.pixels finding and no pixels: images are never shrunk to fit.
  // The size is read from the header, before any pixel is decoded, so a
  // decompression bomb costs nothing. The default matches the PDF
  // converter's page limit (40 million pixels, 160 MB as RGBA).
  uint64_t max_pixels = 40'000'000;
  // Pixels per SVG user unit (CSS px). At 1 an SVG comes out at the pixel
  // size it declares, as a browser shows it at 100 %; physical units
  // follow libvips' 72 per inch (a browser's 96). RenderOptions::dpi is
  // the page resolution of documents and deliberately does not apply: a
  // 900 x 900 px drawing should not become 1875 x 1875 pixels because PDF
  // pages are rendered at 150 DPI. In (0, 16].
  double svg_scale = 1;
};

// The job's RenderOptions::max_page_pixels overrides options.max_pixels
// when non-zero; its other fields do not apply to images.
//
// What comes out, and the decisions behind it:
//   - the first frame of an animated GIF or WebP, the first page of a TIFF;
//   - the EXIF orientation applied (the image as viewers show it), since
//     the tag that carried it does not survive the re-encoding;
//   - an embedded ICC profile applied to reach sRGB (a broken profile is
//     ignored, the samples then read as their colour space's defaults);
//     CMYK, 16-bit, palette and float samples converted to 8-bit sRGB;
//   - gray stays 1 channel; an alpha channel stays (gray + alpha becomes
//     RGBA) unless every pixel is opaque, when it is dropped, so that the
//     many formats and decoders that add an opaque alpha (GIF, 32-bit BMP,
//     RGBA PNGs that never use it) leave the trusted side free to choose
//     JPEG;
//   - a truncated or slightly damaged file gives what its decoder
//     recovers, like any viewer.
//
// Emits one Pixels record, or else exactly one limit.pixels finding and no
// pixels. Throws ConvertError when the bytes are not an image in one of the
// formats above or the decoder fails, and std::bad_alloc when it runs out
// of memory (the worker reports limit.memory).
//
// The first construction (or ImageWarmUpSamples) sets process-wide state
// that suits a worker: libvips started without its modules, only the
// loaders above allowed to run, one thread per operation, no operation
// cache, libvips' warnings dropped, one malloc arena. The trusted side's
// encoder (image_encoder.h) runs in other processes.
//
// Memory: the largest image the default limit admits, as 16-bit RGBA,
// peaks at about 840 MB of the worker's 1 GiB address space (the pixels
// stream from the decoder into the record unless a rotation needs them
// all at once; the record and its serialized frame are 160 MB each).
class ImageConverter : public Converter {
 public:
  // Throws std::invalid_argument when options.svg_scale is out of range, and
  // std::runtime_error when libvips cannot start.
  explicit ImageConverter(ImageConverterOptions options = {});

  void Convert(const ConvertInput& input, RecordSink& sink) override;

 private:
  ImageConverterOptions options_;
};

// Tiny images of every supported format (and of the paths inside them: an
// ICC profile, CMYK, EXIF orientation, 16-bit, palette, SVG text), built in
// memory. The worker converts each before it enters its sandbox, so that
// libvips' loaders, lcms, gdk-pixbuf's BMP module, librsvg and fontconfig
// have loaded their modules and read their configuration while files can
// still be opened.
std::vector<std::string> ImageWarmUpSamples();

}  // namespace mugai

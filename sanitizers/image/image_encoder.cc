#include "sanitizers/image/image_encoder.h"

#include <vips/vips.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "sanitizers/core/glib_handles.h"

namespace mugai {
namespace {

using UniqueImage = GObjectPtr<VipsImage>;

[[noreturn]] void ThrowVipsError(const std::string& what) {
  std::string message = what + ": " + vips_error_buffer();
  vips_error_clear();
  throw std::runtime_error(message);
}

void CheckView(const PixelView& pixels) {
  if (pixels.width == 0 || pixels.height == 0) throw std::invalid_argument("image with an empty dimension");
  if (pixels.channels < 1 || pixels.channels > 4 || pixels.channels == 2) {
    throw std::invalid_argument("image with " + std::to_string(pixels.channels) + " channels");
  }
  if (pixels.data.size() != uint64_t{pixels.width} * pixels.height * pixels.channels) {
    throw std::invalid_argument("image data does not match its dimensions");
  }
}

// A vips image over the caller's bytes (not copied: they outlive it).
UniqueImage Wrap(const PixelView& pixels) {
  CheckView(pixels);
  InitVips();
  UniqueImage image(vips_image_new_from_memory(pixels.data.data(), pixels.data.size(), pixels.width,
                                               pixels.height, pixels.channels, VIPS_FORMAT_UCHAR));
  if (!image) ThrowVipsError("cannot wrap the pixels");
  image->Type = pixels.channels < 3 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
  return image;
}

std::string Take(void* buffer, size_t length) {
  GMallocPtr<void> owned(buffer);
  return std::string(static_cast<const char*>(owned.get()), length);
}

}  // namespace

void InitVips() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    ok = VIPS_INIT("mugai") == 0;
    // Images are encoded once each; vips' operation cache would only hold
    // on to their memory.
    if (ok) vips_cache_set_max(0);
  });
  if (!ok) ThrowVipsError("cannot start libvips");
}

std::string EncodePng(const PixelView& pixels) {
  UniqueImage image = Wrap(pixels);
  void* buffer = nullptr;
  size_t length = 0;
  if (vips_pngsave_buffer(image.get(), &buffer, &length, "compression", 6, "strip", TRUE, nullptr) != 0) {
    ThrowVipsError("cannot encode PNG");
  }
  return Take(buffer, length);
}

std::string EncodeJpeg(const PixelView& pixels, int quality) {
  if (pixels.channels == 4) throw std::invalid_argument("JPEG has no alpha channel");
  if (quality < 1 || quality > 100) throw std::invalid_argument("JPEG quality out of range");
  UniqueImage image = Wrap(pixels);
  void* buffer = nullptr;
  size_t length = 0;
  if (vips_jpegsave_buffer(image.get(), &buffer, &length, "Q", quality, "strip", TRUE, "optimize_coding", TRUE,
                           nullptr) != 0) {
    ThrowVipsError("cannot encode JPEG");
  }
  return Take(buffer, length);
}

}  // namespace mugai

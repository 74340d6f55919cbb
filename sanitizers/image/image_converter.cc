#include "sanitizers/image/image_converter.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <malloc.h>
#include <vips/vips.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>

#include "sanitizers/core/glib_handles.h"
#include "sanitizers/core/findings.h"

namespace mugai {
namespace {

using UniqueImage = GObjectPtr<VipsImage>;
using UniqueSource = GObjectPtr<VipsSource>;

// The only loaders that may run, each from a memory source. libvips 8.14
// flags ppmload and svgload as untrusted (not fuzzed as the others are);
// they are allowed back because PNM and SVG are asked for and run only in
// the sandbox. Everything else stays blocked, including loaders libvips
// counts as trusted (matrixload would read a text file of numbers as an
// image; heifload is not a format we accept) and the modules (ImageMagick,
// OpenSlide, Poppler) that vips_init loads.
constexpr const char* kAllowedLoaders[] = {
    "VipsForeignLoadPngSource",  "VipsForeignLoadJpegSource", "VipsForeignLoadNsgifSource",
    "VipsForeignLoadTiffSource", "VipsForeignLoadWebpSource", "VipsForeignLoadPpmSource",
    "VipsForeignLoadSvgSource"};

void StartVips() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    // Every thread that allocates would otherwise get a malloc arena of
    // its own, 64 MiB of address space each, and libvips' threads would
    // take a third of the worker's 1 GiB before any image is decoded.
    mallopt(M_ARENA_MAX, 1);
    // libvips loads its modules (ImageMagick, OpenSlide, Poppler, HEIF,
    // JPEG XL) from under VIPSHOME when it starts. Their loaders would be
    // blocked below anyway; pointing VIPSHOME nowhere keeps them out of
    // the worker's address space altogether (a few hundred MB less code to
    // run or to reuse).
    setenv("VIPSHOME", "/nonexistent", 1);
    ok = VIPS_INIT("mugai-worker") == 0;
    if (!ok) return;
    // One job at a time per worker: more threads would only cost memory
    // under the worker's address-space limit. No cache: nothing of one
    // job's image may linger for the next.
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    // A damaged file makes libvips warn once per row, and the worker's
    // stderr is the daemon's log: what went wrong reaches the report as
    // the error instead.
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {},
                      nullptr);
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (const char* loader : kAllowedLoaders) vips_operation_block_set(loader, FALSE);
  });
  if (!ok) throw std::runtime_error("cannot start libvips");
}

// libvips reports through a global error buffer; this takes it. Out of
// memory becomes bad_alloc, which the worker reports as limit.memory.
[[noreturn]] void ThrowVipsError(const std::string& what) {
  std::string detail = vips_error_buffer();
  vips_error_clear();
  if (detail.find("out of memory") != std::string::npos) throw std::bad_alloc();
  while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  throw ConvertError(detail.empty() ? what : what + ": " + detail);
}

// Runs one libvips operation `op(in, &out)` and returns its output.
template <typename Op>
UniqueImage Apply(const UniqueImage& in, const char* what, Op op) {
  VipsImage* out = nullptr;
  if (op(in.get(), &out) != 0) ThrowVipsError(what);
  return UniqueImage(out);
}

// True (after a finding) when the image is over the limit.
bool OverLimit(uint64_t width, uint64_t height, uint64_t max_pixels, RecordSink& sink) {
  if (width * height <= max_pixels) return false;
  sink.Finding(finding::kLimitPixels, "the image is " + std::to_string(width) + " x " + std::to_string(height) +
                                          " pixels, more than the limit of " + std::to_string(max_pixels));
  return true;
}

// An RGBA image whose every pixel is opaque becomes RGB, in place.
void DropOpaqueAlpha(v1::worker::Pixels& pixels) {
  if (pixels.channels() != 4) return;
  std::string& data = *pixels.mutable_data();
  for (size_t i = 3; i < data.size(); i += 4) {
    if (static_cast<unsigned char>(data[i]) != 0xff) return;
  }
  size_t out = 0;
  for (size_t i = 0; i < data.size(); i += 4) {
    data[out++] = data[i];
    data[out++] = data[i + 1];
    data[out++] = data[i + 2];
  }
  data.resize(out);
  pixels.set_channels(3);
}

// Pixels as the worker protocol carries them: 8-bit sRGB, 1, 3 or 4
// channels (see the header for the choices).
UniqueImage ToSrgb8(UniqueImage image) {
  if (vips_image_get_typeof(image.get(), VIPS_META_ICC_NAME)) {
    VipsImage* out = nullptr;
    if (vips_icc_transform(image.get(), &out, "srgb", "embedded", TRUE, "depth", 8, nullptr) == 0) {
      image.reset(out);
    } else {
      vips_error_clear();
    }
  }
  const VipsInterpretation interpretation = vips_image_guess_interpretation(image.get());
  const bool gray = vips_image_get_bands(image.get()) == 1 &&
                    (interpretation == VIPS_INTERPRETATION_B_W || interpretation == VIPS_INTERPRETATION_GREY16);
  image = Apply(image, "cannot convert the image to sRGB", [&](VipsImage* in, VipsImage** out) {
    return vips_colourspace(in, out, gray ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB, nullptr);
  });
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    image = Apply(image, "cannot convert the image to 8 bits", [](VipsImage* in, VipsImage** out) {
      return vips_cast_uchar(in, out, nullptr);
    });
  }
  // Extra bands beyond colour and alpha (TIFF allows any number) go.
  const int channels = gray ? 1 : vips_image_hasalpha(image.get()) ? 4 : 3;
  if (vips_image_get_bands(image.get()) != channels) {
    image = Apply(image, "cannot select the image's bands", [&](VipsImage* in, VipsImage** out) {
      return vips_extract_band(in, out, 0, "n", channels, nullptr);
    });
  }
  return image;
}

struct RowTarget {
  char* data;
  size_t line_bytes;
};

// vips_sink_disc hands over the image in bands of whole rows, top to
// bottom, one at a time.
int CopyRows(VipsRegion* region, VipsRect* area, void* a) {
  const auto* target = static_cast<const RowTarget*>(a);
  for (int y = area->top; y < VIPS_RECT_BOTTOM(area); ++y) {
    std::memcpy(target->data + static_cast<size_t>(y) * target->line_bytes, VIPS_REGION_ADDR(region, area->left, y),
                target->line_bytes);
  }
  return 0;
}

// Decodes `image` (only now: everything before was header and plumbing)
// straight into the record's buffer.
v1::worker::Record Decode(const UniqueImage& image) {
  const uint32_t width = vips_image_get_width(image.get());
  const uint32_t height = vips_image_get_height(image.get());
  const uint32_t channels = vips_image_get_bands(image.get());
  v1::worker::Record record = PixelsRecord(width, height, channels);
  std::string* data = record.mutable_pixels()->mutable_data();
  RowTarget target{data->data(), size_t{width} * channels};
  if (vips_sink_disc(image.get(), CopyRows, &target) != 0) ThrowVipsError("cannot decode the image");
  DropOpaqueAlpha(*record.mutable_pixels());
  return record;
}

bool IsBmp(std::string_view content) { return content.starts_with("BM"); }

uint32_t Le32(std::string_view bytes, size_t at) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

// A BMP's size from its header. gdk-pixbuf allocates the whole image as
// soon as it has read the header, and RLE lets a tiny file claim a huge
// one, so the limit is checked on the header first. The decoded size is
// checked again, should gdk-pixbuf read the header differently.
struct BmpSize {
  uint64_t width, height;
};
BmpSize ReadBmpSize(std::string_view bmp) {
  // BITMAPFILEHEADER (14 bytes), then the DIB header, its size first.
  if (bmp.size() < 26) throw ConvertError("the BMP header is truncated");
  const uint32_t dib_size = Le32(bmp, 14);
  if (dib_size == 12) {  // BITMAPCOREHEADER: 16-bit unsigned sides
    return {Le32(bmp, 18) & 0xffff, Le32(bmp, 18) >> 16};
  }
  // Every later header: 32-bit signed sides; a negative height is a
  // top-down image.
  const auto width = static_cast<int32_t>(Le32(bmp, 18));
  const auto height = static_cast<int32_t>(Le32(bmp, 22));
  return {static_cast<uint64_t>(std::llabs(width)), static_cast<uint64_t>(std::llabs(height))};
}

// gdk-pixbuf's loader must be closed once before it is released, whether
// or not the image was read.
class PixbufLoader {
 public:
  PixbufLoader() {
    g_autoptr(GError) error = nullptr;
    loader_ = gdk_pixbuf_loader_new_with_type("bmp", &error);
    if (!loader_) throw ConvertError(std::string("cannot load BMP images: ") + error->message);
  }
  ~PixbufLoader() {
    if (!closed_) gdk_pixbuf_loader_close(loader_, nullptr);
    g_object_unref(loader_);
  }
  PixbufLoader(const PixbufLoader&) = delete;
  PixbufLoader& operator=(const PixbufLoader&) = delete;

  // The decoded image, owned by the loader.
  GdkPixbuf* Load(std::string_view bytes) {
    g_autoptr(GError) error = nullptr;
    const bool written =
        gdk_pixbuf_loader_write(loader_, reinterpret_cast<const guchar*>(bytes.data()), bytes.size(), &error);
    closed_ = true;
    if (!gdk_pixbuf_loader_close(loader_, written ? &error : nullptr) || !written) {
      if (g_error_matches(error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_INSUFFICIENT_MEMORY)) throw std::bad_alloc();
      throw ConvertError(std::string("cannot decode the BMP: ") + (error ? error->message : "unknown error"));
    }
    GdkPixbuf* pixbuf = gdk_pixbuf_loader_get_pixbuf(loader_);
    if (!pixbuf) throw ConvertError("cannot decode the BMP");
    return pixbuf;
  }

 private:
  GdkPixbufLoader* loader_;
  bool closed_ = false;
};

void ConvertBmp(std::string_view bmp, uint64_t max_pixels, RecordSink& sink) {
  const BmpSize size = ReadBmpSize(bmp);
  if (OverLimit(size.width, size.height, max_pixels, sink)) return;
  PixbufLoader loader;
  const GdkPixbuf* pixbuf = loader.Load(bmp);
  const uint32_t width = gdk_pixbuf_get_width(pixbuf);
  const uint32_t height = gdk_pixbuf_get_height(pixbuf);
  if (OverLimit(width, height, max_pixels, sink)) return;
  // gdk-pixbuf has only 8-bit RGB, with or without alpha.
  const uint32_t channels = gdk_pixbuf_get_n_channels(pixbuf);
  if (gdk_pixbuf_get_bits_per_sample(pixbuf) != 8 || (channels != 3 && channels != 4)) {
    throw ConvertError("the BMP decoder returned an unexpected pixel format");
  }
  v1::worker::Record record = PixelsRecord(width, height, channels);
  std::string* data = record.mutable_pixels()->mutable_data();
  const size_t line_bytes = size_t{width} * channels;
  const guint8* rows = gdk_pixbuf_read_pixels(pixbuf);
  const size_t stride = gdk_pixbuf_get_rowstride(pixbuf);
  for (uint32_t y = 0; y < height; ++y) std::memcpy(data->data() + y * line_bytes, rows + y * stride, line_bytes);
  DropOpaqueAlpha(*record.mutable_pixels());
  sink.Emit(std::move(record));
}

bool ValidScale(double scale) { return scale > 0 && scale <= 16; }

}  // namespace

ImageConverter::ImageConverter(ImageConverterOptions options) : options_(options) {
  if (!ValidScale(options_.svg_scale)) throw std::invalid_argument("SVG rendering scale out of range");
  StartVips();
}

void ImageConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  const uint64_t max_pixels = input.render.max_page_pixels() ? input.render.max_page_pixels() : options_.max_pixels;
  if (IsBmp(input.content)) return ConvertBmp(input.content, max_pixels, sink);

  // libvips reads the job's bytes where they are; every image made from
  // them is gone before they are.
  UniqueSource source(vips_source_new_from_memory(input.content.data(), input.content.size()));
  if (!source) ThrowVipsError("cannot read the image");
  const char* loader = vips_foreign_find_load_source(source.get());
  if (!loader) ThrowVipsError("not an image in a format that is accepted");
  const bool svg = std::string_view(loader) == "VipsForeignLoadSvgSource";
  // Reads the header only; the pixels are decoded as Decode() asks for
  // them. Sequentially, they stream from the decoder into the record; a
  // rotation needs them all at once, and "memory" keeps them there rather
  // than in a temporary file (the sandbox has no writable place, and an
  // attempt to write is fatal). A truncated image is an error, as a
  // truncated PDF is: by default libvips fills the missing rows and the
  // receiver would get a different picture with nothing said about it.
  auto open = [&](VipsAccess access) {
    UniqueImage image(svg ? vips_image_new_from_source(source.get(), "", "access", access, "memory", TRUE,
                                                       "fail_on", VIPS_FAIL_ON_TRUNCATED, "scale",
                                                       options_.svg_scale, nullptr)
                          : vips_image_new_from_source(source.get(), "", "access", access, "memory", TRUE,
                                                       "fail_on", VIPS_FAIL_ON_TRUNCATED, nullptr));
    if (!image) ThrowVipsError("cannot read the image");
    return image;
  };
  UniqueImage image = open(VIPS_ACCESS_SEQUENTIAL);
  if (OverLimit(vips_image_get_width(image.get()), vips_image_get_height(image.get()), max_pixels, sink)) return;

  int orientation = 1;
  if (vips_image_get_typeof(image.get(), VIPS_META_ORIENTATION) &&
      vips_image_get_int(image.get(), VIPS_META_ORIENTATION, &orientation) == 0 && orientation > 1 &&
      orientation <= 8) {
    image = Apply(open(VIPS_ACCESS_RANDOM), "cannot apply the image's orientation",
                  [](VipsImage* in, VipsImage** out) { return vips_autorot(in, out, nullptr); });
  }
  sink.Emit(Decode(ToSrgb8(std::move(image))));
}

namespace {

// A 2 x 2 24-bit BMP (BITMAPINFOHEADER, bottom-up rows padded to 4 bytes).
std::string TinyBmp() {
  std::string bmp = "BM";
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp += static_cast<char>(v >> (8 * i));
  };
  auto le16 = [&](uint16_t v) {
    bmp += static_cast<char>(v);
    bmp += static_cast<char>(v >> 8);
  };
  le32(14 + 40 + 16);
  le32(0);
  le32(14 + 40);
  le32(40);
  le32(2);
  le32(2);
  le16(1);
  le16(24);
  for (int i = 0; i < 6; ++i) le32(0);  // BI_RGB, sizes, resolutions, palette
  for (int row = 0; row < 2; ++row) bmp += std::string("\x00\x00\xff\xff\xff\xff\x00\x00", 8);
  return bmp;
}

// A small SVG with text in Japanese, so that librsvg, Pango and fontconfig
// load a CJK font as they would for a real one.
constexpr std::string_view kSvg =
    "<svg xmlns='http://www.w3.org/2000/svg' width='16' height='16'>"
    "<rect width='16' height='16' fill='#08f'/><text x='1' y='12' font-size='10'>日本a</text></svg>";

// Saves `image` as `format` (a suffix with libvips options) into
// `samples`; a format this libvips build cannot write is left out.
void Save(VipsImage* image, const char* format, std::vector<std::string>& samples) {
  void* buffer = nullptr;
  size_t length = 0;
  if (vips_image_write_to_buffer(image, format, &buffer, &length, nullptr) != 0) {
    vips_error_clear();
    return;
  }
  GMallocPtr<void> owned(buffer);
  samples.emplace_back(static_cast<const char*>(owned.get()), length);
}

}  // namespace

std::vector<std::string> ImageWarmUpSamples() {
  StartVips();
  std::string rgb;
  for (int i = 0; i < 8 * 8; ++i) rgb += {static_cast<char>(i * 4), static_cast<char>(255 - i * 4), '\x40'};
  UniqueImage image(vips_image_new_from_memory_copy(rgb.data(), rgb.size(), 8, 8, 3, VIPS_FORMAT_UCHAR));
  if (!image) return {std::string(kSvg), TinyBmp()};
  std::vector<std::string> samples;
  for (const char* format : {".png", ".png[palette]", ".jpg", ".gif", ".tif", ".webp", ".ppm"}) {
    Save(image.get(), format, samples);
  }
  auto derive = [&](const char* format, auto op) {
    VipsImage* out = nullptr;
    if (op(image.get(), &out) != 0) {
      vips_error_clear();
      return;
    }
    UniqueImage owned(out);
    Save(owned.get(), format, samples);
  };
  // An ICC profile to import, CMYK to convert, 16 bits and alpha to
  // reduce, gray (PGM, PBM), and an EXIF orientation to apply.
  derive(".png", [](VipsImage* in, VipsImage** out) {
    return vips_icc_transform(in, out, "srgb", "input_profile", "srgb", nullptr);
  });
  derive(".jpg", [](VipsImage* in, VipsImage** out) {
    return vips_icc_transform(in, out, "cmyk", "input_profile", "srgb", nullptr);
  });
  derive(".png", [](VipsImage* in, VipsImage** out) { return vips_colourspace(in, out, VIPS_INTERPRETATION_RGB16, nullptr); });
  derive(".pgm", [](VipsImage* in, VipsImage** out) { return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, nullptr); });
  derive(".pbm[bitdepth=1]",
         [](VipsImage* in, VipsImage** out) { return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, nullptr); });
  derive(".jpg", [](VipsImage* in, VipsImage** out) {
    if (vips_copy(in, out, nullptr) != 0) return -1;
    vips_image_set_int(*out, VIPS_META_ORIENTATION, 6);
    return 0;
  });
  samples.emplace_back(kSvg);
  samples.push_back(TinyBmp());
  return samples;
}

}  // namespace mugai

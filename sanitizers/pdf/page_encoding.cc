#include "sanitizers/pdf/page_encoding.h"

#include <libimagequant.h>
#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sanitizers/image/image_encoder.h"

namespace mugai {
namespace {

struct LiqDelete {
  void operator()(liq_attr* p) const { liq_attr_destroy(p); }
  void operator()(liq_image* p) const { liq_image_destroy(p); }
  void operator()(liq_result* p) const { liq_result_destroy(p); }
};
constexpr int kDeflateLevel = 6;

// Page statistics and palettes are taken from every 4th row.
constexpr uint32_t kSampleRowStep = 4;

template <typename T>
using LiqPtr = std::unique_ptr<T, LiqDelete>;

void CheckView(const PixelView& page) {
  if (page.width == 0 || page.height == 0) throw std::invalid_argument("page image with an empty dimension");
  if (page.channels != 1 && page.channels != 3 && page.channels != 4) {
    throw std::invalid_argument("page image with " + std::to_string(page.channels) + " channels");
  }
  if (page.data.size() != uint64_t{page.width} * page.height * page.channels) {
    throw std::invalid_argument("page image data does not match its dimensions");
  }
}

// Alpha-composites one sample onto white.
unsigned char OnWhite(unsigned value, unsigned alpha) {
  return static_cast<unsigned char>((value * alpha + 255 * (255 - alpha) + 127) / 255);
}

// The page as opaque RGB: pages are paper, so transparency means white.
std::string ToRgb(const PixelView& page) {
  const size_t pixels = size_t{page.width} * page.height;
  std::string rgb(pixels * 3, '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(page.data.data());
  auto* out = reinterpret_cast<unsigned char*>(rgb.data());
  for (size_t i = 0; i < pixels; ++i, in += page.channels, out += 3) {
    if (page.channels == 1) {
      out[0] = out[1] = out[2] = in[0];
    } else {
      for (int c = 0; c < 3; ++c) out[c] = page.channels == 4 ? OnWhite(in[c], in[3]) : in[c];
    }
  }
  return rgb;
}

uint32_t ColorAt(const unsigned char* rgb, size_t pixel) {
  const unsigned char* p = rgb + pixel * 3;
  return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2];
}

struct Indexed {
  std::string palette;  // RGB triples
  std::string indices;  // one byte a pixel
};

// The page's own colours when it has at most `max_colors`: a lossless
// palette.
std::optional<Indexed> ExactPalette(const unsigned char* rgb, size_t pixels, size_t max_colors) {
  // Open addressing over colour + 1 (0 marks a free slot); pages are mostly
  // runs of one colour, so the previous pixel's answer is tried first.
  constexpr size_t kSlots = 1024;
  std::array<uint32_t, kSlots> keys{};
  std::array<unsigned char, kSlots> slot_index{};
  Indexed result;
  result.indices.resize(pixels);
  uint32_t last_color = ~0u;
  unsigned char last_index = 0;
  size_t count = 0;
  for (size_t i = 0; i < pixels; ++i) {
    const uint32_t color = ColorAt(rgb, i);
    if (color != last_color) {
      size_t slot = (color * 2654435761u) % kSlots;
      while (keys[slot] != 0 && keys[slot] != color + 1) slot = (slot + 1) % kSlots;
      if (keys[slot] == 0) {
        if (count == max_colors) return std::nullopt;
        keys[slot] = color + 1;
        slot_index[slot] = static_cast<unsigned char>(count++);
        result.palette.push_back(static_cast<char>(color >> 16));
        result.palette.push_back(static_cast<char>(color >> 8));
        result.palette.push_back(static_cast<char>(color));
      }
      last_color = color;
      last_index = slot_index[slot];
    }
    result.indices[i] = static_cast<char>(last_index);
  }
  return result;
}

struct RowSource {
  const unsigned char* rgb;
  uint32_t width;
  uint32_t row_step;  // 1: every row; n: every n-th
};

void RgbaRow(liq_color row_out[], int row, int width, void* user_info) {
  const auto* source = static_cast<const RowSource*>(user_info);
  const unsigned char* in = source->rgb + size_t(row) * source->row_step * source->width * 3;
  for (int x = 0; x < width; ++x, in += 3) row_out[x] = {in[0], in[1], in[2], 255};
}

// The palette libimagequant chooses for the page: at most `colors` RGB
// triples.
std::string ChoosePalette(const unsigned char* rgb, uint32_t width, uint32_t height, int colors) {
  LiqPtr<liq_attr> attr(liq_attr_create());
  if (!attr) throw std::bad_alloc();
  // The fastest setting: pages of text settle on their few colours at
  // once, and the slower settings gain nothing visible.
  if (liq_set_max_colors(attr.get(), colors) != LIQ_OK || liq_set_speed(attr.get(), 10) != LIQ_OK) {
    throw std::invalid_argument("palette size out of range");
  }
  // Chosen from every kSampleRowStep-th row, which sees every colour that
  // covers enough of the page to matter, at a fraction of the cost.
  RowSource rows{rgb, width, kSampleRowStep};
  LiqPtr<liq_image> sample(
      liq_image_create_custom(attr.get(), RgbaRow, &rows, width, std::max(1u, height / kSampleRowStep), 0));
  if (!sample) throw std::runtime_error("cannot prepare the page for quantization");
  liq_result* raw_result = nullptr;
  const liq_error status = liq_image_quantize(sample.get(), attr.get(), &raw_result);
  LiqPtr<liq_result> result(raw_result);
  if (status == LIQ_OUT_OF_MEMORY) throw std::bad_alloc();
  if (status != LIQ_OK) throw std::runtime_error("cannot quantize the page");
  const liq_palette* palette = liq_get_palette(result.get());
  std::string triples;
  for (unsigned i = 0; i < palette->count; ++i) {
    triples += {static_cast<char>(palette->entries[i].r), static_cast<char>(palette->entries[i].g),
                static_cast<char>(palette->entries[i].b)};
  }
  return triples;
}

// Every pixel replaced by its nearest palette entry, without dithering:
// dithering would speckle the flat areas of text pages (and defeat
// deflate) for no gain in legibility. Nearest is looked up in a table over
// colours at 5 bits a channel, so the cost is one lookup a pixel.
Indexed Remap(const unsigned char* rgb, size_t pixels, std::string palette) {
  const auto* entries = reinterpret_cast<const unsigned char*>(palette.data());
  const size_t count = palette.size() / 3;
  std::vector<unsigned char> nearest(1 << 15);
  for (uint32_t bin = 0; bin < nearest.size(); ++bin) {
    const int r = int(bin >> 10) << 3 | 4, g = int(bin >> 5 & 31) << 3 | 4, b = int(bin & 31) << 3 | 4;
    int best = 0, best_distance = std::numeric_limits<int>::max();
    for (size_t i = 0; i < count; ++i) {
      const int dr = r - entries[i * 3], dg = g - entries[i * 3 + 1], db = b - entries[i * 3 + 2];
      const int distance = dr * dr + dg * dg + db * db;
      if (distance < best_distance) best_distance = distance, best = static_cast<int>(i);
    }
    nearest[bin] = static_cast<unsigned char>(best);
  }
  Indexed indexed{std::move(palette), std::string(pixels, '\0')};
  for (size_t i = 0; i < pixels; ++i, rgb += 3) {
    indexed.indices[i] = static_cast<char>(nearest[(rgb[0] >> 3) << 10 | (rgb[1] >> 3) << 5 | rgb[2] >> 3]);
  }
  return indexed;
}

uint32_t BitsFor(size_t colors) { return colors <= 2 ? 1 : colors <= 4 ? 2 : colors <= 16 ? 4 : 8; }

// Indices packed `bits` to a sample, most significant first, each row
// starting on a byte boundary, as PDF image data is laid out.
std::string Pack(const std::string& indices, uint32_t width, uint32_t height, uint32_t bits) {
  if (bits == 8) return indices;
  const size_t row_bytes = (size_t{width} * bits + 7) / 8;
  std::string packed(row_bytes * height, '\0');
  for (uint32_t y = 0; y < height; ++y) {
    const auto* in = reinterpret_cast<const unsigned char*>(indices.data()) + size_t{y} * width;
    auto* out = reinterpret_cast<unsigned char*>(packed.data()) + y * row_bytes;
    unsigned accumulated = 0, filled = 0;
    for (uint32_t x = 0; x < width; ++x) {
      accumulated = accumulated << bits | in[x];
      if ((filled += bits) == 8) *out++ = static_cast<unsigned char>(accumulated), accumulated = filled = 0;
    }
    if (filled) *out = static_cast<unsigned char>(accumulated << (8 - filled));
  }
  return packed;
}

struct CompressorFree {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};

// A zlib stream, as FlateDecode wants. libdeflate rather than zlib: at
// its level 6 it is about twice as fast as zlib's default level on page
// images, and a few percent smaller.
std::string Deflate(const std::string& data) {
  std::unique_ptr<libdeflate_compressor, CompressorFree> compressor(libdeflate_alloc_compressor(kDeflateLevel));
  if (!compressor) throw std::bad_alloc();
  std::string out(libdeflate_zlib_compress_bound(compressor.get(), data.size()), '\0');
  const size_t length =
      libdeflate_zlib_compress(compressor.get(), data.data(), data.size(), out.data(), out.size());
  if (length == 0) throw std::runtime_error("cannot deflate the page image");
  out.resize(length);
  return out;
}

EncodedPage FromPalette(Indexed indexed, uint32_t width, uint32_t height, std::string_view encoding) {
  EncodedPage page;
  page.width = width;
  page.height = height;
  page.bits_per_component = BitsFor(indexed.palette.size() / 3);
  page.data = Deflate(Pack(indexed.indices, width, height, page.bits_per_component));
  page.palette = std::move(indexed.palette);
  page.encoding = encoding;
  return page;
}

struct PageStats {
  // The share of the pixels in the page's 16 most common colours, counted
  // at 5 bits a channel so that near-identical shades count as one. Text,
  // forms and line art are a few flat colours plus their anti-aliased
  // edges (0.94 and more on the corpus); photographs and scans spread out
  // (0.93 and less).
  double top_colors_share;
  // The share of the pixels that are clearly coloured, not gray.
  double chromatic_share;
};

// From every kSampleRowStep-th row: a seal or a coloured heading spans
// dozens of rows at 150 DPI.
PageStats Measure(const unsigned char* rgb, uint32_t width, uint32_t height) {
  std::vector<uint32_t> counts(1 << 15);
  size_t chromatic = 0, sampled = 0;
  for (uint32_t y = 0; y < height; y += kSampleRowStep) {
    const unsigned char* p = rgb + size_t{y} * width * 3;
    for (uint32_t x = 0; x < width; ++x, p += 3) {
      ++counts[(p[0] >> 3) << 10 | (p[1] >> 3) << 5 | p[2] >> 3];
      const auto [low, high] = std::minmax({p[0], p[1], p[2]});
      chromatic += high - low > 48;
    }
    sampled += width;
  }
  std::partial_sort(counts.begin(), counts.begin() + 16, counts.end(), std::greater<>());
  uint64_t top = 0;
  for (int i = 0; i < 16; ++i) top += counts[i];
  return {static_cast<double>(top) / sampled, static_cast<double>(chromatic) / sampled};
}

bool AllGray(const unsigned char* rgb, size_t pixels) {
  for (size_t i = 0; i < pixels; ++i, rgb += 3) {
    if (rgb[0] != rgb[1] || rgb[1] != rgb[2]) return false;
  }
  return true;
}

// Beyond this a page is rarely drawn in so few colours on purpose: a lossless
// palette would keep anti-aliasing or photographic detail at 8 bits a pixel.
constexpr size_t kMaxExactColors = 16;

}  // namespace

EncodedPage EncodePage(const PixelView& view, const PageEncodingOptions& options) {
  CheckView(view);
  if (options.palette_colors < 2 || options.palette_colors > 256 || options.gray_palette_colors < 2 ||
      options.gray_palette_colors > 256 || !(options.min_top_colors_share >= 0 && options.min_top_colors_share <= 1) ||
      options.jpeg_quality < 1 || options.jpeg_quality > 100) {
    throw std::invalid_argument("page encoding options out of range");
  }
  std::string converted;
  if (view.channels != 3) converted = ToRgb(view);
  const auto* rgb = reinterpret_cast<const unsigned char*>(view.channels == 3 ? view.data.data() : converted.data());
  const size_t pixels = size_t{view.width} * view.height;

  if (std::optional<Indexed> exact = ExactPalette(rgb, pixels, kMaxExactColors)) {
    return FromPalette(std::move(*exact), view.width, view.height, "palette");
  }
  const PageStats stats = Measure(rgb, view.width, view.height);
  if (stats.top_colors_share >= options.min_top_colors_share) {
    const bool gray = stats.chromatic_share < options.max_gray_chromatic_share;
    std::string palette =
        ChoosePalette(rgb, view.width, view.height, gray ? options.gray_palette_colors : options.palette_colors);
    return FromPalette(Remap(rgb, pixels, std::move(palette)), view.width, view.height,
                       gray ? "quantized-gray" : "quantized");
  }
  EncodedPage page;
  page.width = view.width;
  page.height = view.height;
  page.filter = EncodedPage::Filter::kDct;
  if (AllGray(rgb, pixels)) {
    std::string gray(pixels, '\0');
    for (size_t i = 0; i < pixels; ++i) gray[i] = static_cast<char>(rgb[i * 3]);
    page.data = EncodeJpeg({view.width, view.height, 1, gray}, options.jpeg_quality);
    page.encoding = "jpeg-gray";
  } else {
    page.data = EncodeJpeg({view.width, view.height, 3, {reinterpret_cast<const char*>(rgb), pixels * 3}},
                           options.jpeg_quality);
    page.channels = 3;
    page.encoding = "jpeg";
  }
  return page;
}

}  // namespace mugai

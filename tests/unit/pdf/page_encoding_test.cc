#include "sanitizers/pdf/page_encoding.h"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

namespace mugai {
namespace {

constexpr uint32_t kWidth = 200, kHeight = 100;

// A white page with a black bar and, when `color`, a red one.
std::string Bars(bool color) {
  std::string rgb(size_t{kWidth} * kHeight * 3, '\xff');
  for (uint32_t y = 10; y < 20; ++y) {
    for (uint32_t x = 0; x < kWidth; ++x) rgb.replace((size_t{y} * kWidth + x) * 3, 3, std::string(3, '\0'));
  }
  if (color) {
    for (uint32_t y = 40; y < 50; ++y) {
      for (uint32_t x = 0; x < kWidth; ++x) rgb.replace((size_t{y} * kWidth + x) * 3, 3, std::string("\xff\0\0", 3));
    }
  }
  return rgb;
}

// Text-like: two colours plus a soft gradient of grays at the edges, more
// than 256 colours in all but few that matter.
std::string AntiAliased() {
  std::string rgb = Bars(true);
  for (uint32_t x = 0; x < kWidth; ++x) {
    for (uint32_t y = 20; y < 22; ++y) {
      const char v = static_cast<char>((x * 7 + y) % 256);
      rgb.replace((size_t{y} * kWidth + x) * 3, 3, std::string{v, v, static_cast<char>(v / 2)});
    }
  }
  return rgb;
}

std::string Noise(bool gray) {
  std::mt19937 random(7);
  std::string rgb(size_t{kWidth} * kHeight * 3, '\0');
  for (size_t i = 0; i < rgb.size(); i += 3) {
    for (int c = 0; c < 3; ++c) rgb[i + c] = static_cast<char>(random() & 0xff);
    if (gray) rgb[i + 1] = rgb[i + 2] = rgb[i];
  }
  return rgb;
}

TEST(PageEncoding, FewColoursAreAnExactPalette) {
  std::string gray = Bars(false);
  EncodedPage page = EncodePage({kWidth, kHeight, 3, gray});
  EXPECT_EQ(page.encoding, "palette");
  EXPECT_EQ(page.filter, EncodedPage::Filter::kFlate);
  EXPECT_EQ(page.bits_per_component, 1u);
  EXPECT_EQ(page.palette.size(), 6u);
  std::string color = Bars(true);
  page = EncodePage({kWidth, kHeight, 3, color});
  EXPECT_EQ(page.bits_per_component, 2u);
  EXPECT_EQ(page.palette.size(), 9u);
  // 200 x 100 pixels of 2 bits, deflated: far below 1 KB.
  EXPECT_LT(page.data.size(), 1000u);
}

TEST(PageEncoding, TextLikePagesAreQuantized) {
  std::string rgb = AntiAliased();
  EncodedPage page = EncodePage({kWidth, kHeight, 3, rgb});
  EXPECT_EQ(page.encoding, "quantized");
  EXPECT_LE(page.palette.size() / 3, 16u);
  EXPECT_LE(page.bits_per_component, 4u);
  // Without the red bar the page is gray and gets by with 4 colours.
  for (size_t i = 0; i < rgb.size(); i += 3) {
    if (rgb.compare(i, 3, std::string("\xff\0\0", 3)) == 0) rgb.replace(i, 3, "\xff\xff\xff");
  }
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i + 2] = rgb[i + 1] = rgb[i];
  page = EncodePage({kWidth, kHeight, 3, rgb});
  EXPECT_EQ(page.encoding, "quantized-gray");
  EXPECT_LE(page.bits_per_component, 2u);
}

TEST(PageEncoding, PhotographsAreJpeg) {
  std::string rgb = Noise(false);
  EncodedPage page = EncodePage({kWidth, kHeight, 3, rgb});
  EXPECT_EQ(page.encoding, "jpeg");
  EXPECT_EQ(page.filter, EncodedPage::Filter::kDct);
  EXPECT_EQ(page.channels, 3u);
  EXPECT_TRUE(page.data.starts_with("\xff\xd8"));
  std::string gray = Noise(true);
  page = EncodePage({kWidth, kHeight, 3, gray});
  EXPECT_EQ(page.encoding, "jpeg-gray");
  EXPECT_EQ(page.channels, 1u);
}

TEST(PageEncoding, GrayAndRgbaInputs) {
  std::string gray(size_t{kWidth} * kHeight, '\x80');
  EncodedPage page = EncodePage({kWidth, kHeight, 1, gray});
  EXPECT_EQ(page.palette, "\x80\x80\x80");
  std::string transparent(size_t{kWidth} * kHeight * 4, '\0');
  page = EncodePage({kWidth, kHeight, 4, transparent});
  EXPECT_EQ(page.palette, "\xff\xff\xff");  // paper is white
}

TEST(PageEncoding, RejectsMalformedInput) {
  std::string three(3, '\0');
  EXPECT_THROW(EncodePage({1, 1, 2, three}), std::invalid_argument);
  EXPECT_THROW(EncodePage({1, 2, 3, three}), std::invalid_argument);
  EXPECT_THROW(EncodePage({0, 1, 3, ""}), std::invalid_argument);
  EXPECT_THROW(EncodePage({1, 1, 3, three}, {.jpeg_quality = 0}), std::invalid_argument);
  EXPECT_THROW(EncodePage({1, 1, 3, three}, {.palette_colors = 1}), std::invalid_argument);
}

}  // namespace
}  // namespace mugai

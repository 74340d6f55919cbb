#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>
#include <zlib.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sanitizers/image/image_converter.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/worker/worker_pool.h"
#include "tests/unit/test_support.h"

// For LeakSanitizer builds: fontconfig 2.14 leaks once per process while it
// parses its configuration (librsvg's first text, through Pango).
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

namespace mugai {
namespace {

using v1::worker::Pixels;
using v1::worker::Record;

struct Recorder : test::Recorder {
  // The one record, which must be pixels.
  Pixels OnlyPixels() const {
    EXPECT_EQ(records.size(), 1u);
    if (records.size() != 1 || !records[0].has_pixels()) return {};
    return records[0].pixels();
  }
  // The one record, which must be a finding; its code.
  std::string OnlyFinding() const {
    if (records.size() != 1 || !records[0].has_finding()) return "not exactly one finding";
    return records[0].finding().code();
  }
};

Recorder Convert(std::string_view content, ImageConverterOptions options = {}, uint64_t max_page_pixels = 0) {
  Recorder sink;
  ConvertInput input{"test", content, 1 << 20};
  input.render.set_max_page_pixels(max_page_pixels);
  ImageConverter(options).Convert(input, sink);
  return sink;
}

std::string Pixel(const Pixels& p, uint32_t x, uint32_t y) {
  return p.data().substr((size_t{p.width()} * y + x) * p.channels(), p.channels());
}

// Well formed, and not one colour: at least 1% of the pixels differ from
// the top left one.
void ExpectPicture(const Pixels& p, const std::string& what) {
  ASSERT_TRUE(p.channels() == 1 || p.channels() == 3 || p.channels() == 4) << what;
  ASSERT_EQ(p.data().size(), size_t{p.width()} * p.height() * p.channels()) << what;
  const std::string corner = Pixel(p, 0, 0);
  size_t different = 0;
  for (size_t i = 0; i < p.data().size(); i += p.channels()) different += p.data().compare(i, p.channels(), corner) != 0;
  EXPECT_GT(different, size_t{p.width()} * p.height() / 100) << what;
}

// Images the tests make with libvips (a separate, unrestricted use of it:
// saving is not blocked).
struct ObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
using UniqueImage = std::unique_ptr<VipsImage, ObjectUnref>;

// width x height, 3 or 4 channels: red left half, blue right half; with 4,
// the bottom row transparent.
UniqueImage Halves(int width, int height, int channels) {
  std::string data;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      data += x < width / 2 ? std::string("\xff\x00\x00", 3) : std::string("\x00\x00\xff", 3);
      if (channels == 4) data += y == height - 1 ? '\x00' : '\xff';
    }
  }
  return UniqueImage(vips_image_new_from_memory_copy(data.data(), data.size(), width, height, channels,
                                                     VIPS_FORMAT_UCHAR));
}

std::string Save(VipsImage* image, const char* format) {
  void* buffer = nullptr;
  size_t length = 0;
  EXPECT_EQ(vips_image_write_to_buffer(image, format, &buffer, &length, nullptr), 0) << vips_error_buffer();
  std::string bytes(static_cast<const char*>(buffer), length);
  g_free(buffer);
  return bytes;
}

template <typename Op>
UniqueImage Derive(const UniqueImage& in, Op op) {
  VipsImage* out = nullptr;
  EXPECT_EQ(op(in.get(), &out), 0) << vips_error_buffer();
  return UniqueImage(out);
}

class ImageConverterTest : public ::testing::Test {
 protected:
  // The converter starts libvips; the tests' own images need it too.
  static void SetUpTestSuite() { ImageConverter(); }
};

struct CorpusImage {
  const char* path;
  uint32_t width, height;
};
constexpr CorpusImage kCorpus[] = {
    {"dangerzone-test-docs/test_docs/sample-bmp.bmp", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-gif.gif", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-jpg.jpg", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-png.png", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-pbm.pbm", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-pnm.pnm", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-ppm.ppm", 500, 500},
    {"dangerzone-test-docs/test_docs/sample-svg.svg", 900, 900},  // declared 900 x 900 px
    {"dangerzone-test-docs/test_docs/legacy/sample.tiff", 500, 500},
    {"dangerzone-test-docs/test_docs/edge_cases/Оригинал.png", 500, 500},
};

TEST_F(ImageConverterTest, EveryCorpusImageDecodes) {
  for (const CorpusImage& image : kCorpus) {
    Pixels p = Convert(test::ReadCorpusFile(image.path)).OnlyPixels();
    EXPECT_EQ(p.width(), image.width) << image.path;
    EXPECT_EQ(p.height(), image.height) << image.path;
    ExpectPicture(p, image.path);
  }
}

TEST_F(ImageConverterTest, EveryWarmUpSampleDecodes) {
  std::vector<std::string> samples = ImageWarmUpSamples();
  EXPECT_GE(samples.size(), 14u);
  for (size_t i = 0; i < samples.size(); ++i) {
    Recorder sink = Convert(samples[i]);
    ASSERT_EQ(sink.records.size(), 1u) << i;
    EXPECT_TRUE(sink.records[0].has_pixels()) << i << " " << sink.records[0].finding().reason();
  }
}

TEST_F(ImageConverterTest, EveryFormatGivesTheSamePicture) {
  UniqueImage rgb = Halves(40, 20, 3);
  for (const char* format : {".png", ".jpg", ".gif", ".tif", ".webp", ".ppm", ".png[palette]"}) {
    Pixels p = Convert(Save(rgb.get(), format)).OnlyPixels();
    ASSERT_EQ(p.width(), 40u) << format;
    ASSERT_EQ(p.height(), 20u) << format;
    ASSERT_EQ(p.channels(), 3u) << format;
    // Lossy formats are near enough.
    for (auto [x, expected] : {std::pair{5, std::string("\xff\x00\x00", 3)}, {35, std::string("\x00\x00\xff", 3)}}) {
      const std::string got = Pixel(p, x, 10);
      for (int c = 0; c < 3; ++c) {
        EXPECT_NEAR(static_cast<unsigned char>(got[c]), static_cast<unsigned char>(expected[c]), 24) << format;
      }
    }
  }
}

TEST_F(ImageConverterTest, GrayStaysOneChannel) {
  UniqueImage gray = Derive(Halves(40, 20, 3), [](VipsImage* in, VipsImage** out) {
    return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, nullptr);
  });
  for (const char* format : {".png", ".pgm", ".pbm[bitdepth=1]", ".jpg"}) {
    Pixels p = Convert(Save(gray.get(), format)).OnlyPixels();
    EXPECT_EQ(p.channels(), 1u) << format;
    EXPECT_EQ(p.width(), 40u) << format;
  }
}

TEST_F(ImageConverterTest, AlphaIsKeptOnlyWhereSomethingIsTransparent) {
  Pixels transparent = Convert(Save(Halves(40, 20, 4).get(), ".png")).OnlyPixels();
  ASSERT_EQ(transparent.channels(), 4u);
  EXPECT_EQ(Pixel(transparent, 5, 0), std::string("\xff\x00\x00\xff", 4));
  EXPECT_EQ(Pixel(transparent, 5, 19)[3], '\x00');
  // GIF decodes to RGBA, always: an opaque one comes out RGB.
  EXPECT_EQ(Convert(Save(Halves(40, 20, 3).get(), ".gif")).OnlyPixels().channels(), 3u);
  // The corpus PNG, GIF and 32-bit BMP have a transparent background.
  for (int i : {0, 1, 3}) {
    Pixels p = Convert(test::ReadCorpusFile(kCorpus[i].path)).OnlyPixels();
    ASSERT_EQ(p.channels(), 4u) << kCorpus[i].path;
    EXPECT_EQ(Pixel(p, 0, 0)[3], '\x00') << kCorpus[i].path;
  }
}

TEST_F(ImageConverterTest, SixteenBitsBecomeEight) {
  UniqueImage rgb16 = Derive(Halves(40, 20, 4), [](VipsImage* in, VipsImage** out) {
    return vips_colourspace(in, out, VIPS_INTERPRETATION_RGB16, nullptr);
  });
  ASSERT_EQ(vips_image_get_format(rgb16.get()), VIPS_FORMAT_USHORT);
  Pixels p = Convert(Save(rgb16.get(), ".png")).OnlyPixels();
  ASSERT_EQ(p.channels(), 4u);
  EXPECT_EQ(Pixel(p, 5, 0), std::string("\xff\x00\x00\xff", 4));
  EXPECT_EQ(Pixel(p, 35, 19), std::string("\x00\x00\xff\x00", 4));
}

TEST_F(ImageConverterTest, CmykAndIccProfilesBecomeSrgb) {
  UniqueImage rgb = Halves(40, 20, 3);
  UniqueImage cmyk = Derive(rgb, [](VipsImage* in, VipsImage** out) {
    return vips_icc_transform(in, out, "cmyk", "input_profile", "srgb", nullptr);
  });
  ASSERT_EQ(vips_image_get_bands(cmyk.get()), 4);
  const std::string with_profile = Save(cmyk.get(), ".jpg");
  // The same CMYK samples without their profile: libvips' default CMYK.
  UniqueImage bare = Derive(cmyk, [](VipsImage* in, VipsImage** out) {
    if (vips_copy(in, out, nullptr) != 0) return -1;
    vips_image_remove(*out, VIPS_META_ICC_NAME);
    return 0;
  });
  for (const std::string& jpeg : {with_profile, Save(bare.get(), ".jpg")}) {
    Pixels p = Convert(jpeg).OnlyPixels();
    ASSERT_EQ(p.channels(), 3u);
    const std::string left = Pixel(p, 5, 10);
    EXPECT_GT(static_cast<unsigned char>(left[0]), 150);  // red stays red
    EXPECT_LT(static_cast<unsigned char>(left[2]), 100);
  }
  // A profile other than sRGB is applied: Display P3's red is redder than
  // sRGB can show, so it comes out saturated.
  UniqueImage p3 = Derive(rgb, [](VipsImage* in, VipsImage** out) {
    return vips_icc_transform(in, out, "p3", "input_profile", "srgb", nullptr);
  });
  Pixels p = Convert(Save(p3.get(), ".png")).OnlyPixels();
  EXPECT_GE(static_cast<unsigned char>(Pixel(p, 5, 10)[0]), 250);
  EXPECT_LE(static_cast<unsigned char>(Pixel(p, 5, 10)[1]), 5);
}

TEST_F(ImageConverterTest, ABrokenIccProfileIsIgnored) {
  UniqueImage broken = Derive(Halves(40, 20, 3), [](VipsImage* in, VipsImage** out) {
    if (vips_copy(in, out, nullptr) != 0) return -1;
    const std::string junk(600, 'x');
    vips_image_set_blob_copy(*out, VIPS_META_ICC_NAME, junk.data(), junk.size());
    return 0;
  });
  for (const char* format : {".png", ".jpg", ".tif"}) {
    Pixels p = Convert(Save(broken.get(), format)).OnlyPixels();
    ASSERT_EQ(p.channels(), 3u) << format;
    EXPECT_GT(static_cast<unsigned char>(Pixel(p, 5, 10)[0]), 200) << format;
  }
}

TEST_F(ImageConverterTest, ExifOrientationIsApplied) {
  // 40 x 20, red on the left; "rotate 90 clockwise to view" (6).
  UniqueImage tagged = Derive(Halves(40, 20, 3), [](VipsImage* in, VipsImage** out) {
    if (vips_copy(in, out, nullptr) != 0) return -1;
    vips_image_set_int(*out, VIPS_META_ORIENTATION, 6);
    return 0;
  });
  Pixels p = Convert(Save(tagged.get(), ".jpg")).OnlyPixels();
  ASSERT_EQ(p.width(), 20u);
  ASSERT_EQ(p.height(), 40u);
  EXPECT_GT(static_cast<unsigned char>(Pixel(p, 10, 5)[0]), 200);   // red now on top
  EXPECT_GT(static_cast<unsigned char>(Pixel(p, 10, 35)[2]), 200);  // blue below
}

TEST_F(ImageConverterTest, OnlyTheFirstFrameOrPage) {
  // Two frames stacked as pages: red-left, then its mirror.
  UniqueImage first = Halves(40, 20, 3);
  UniqueImage second = Derive(first, [](VipsImage* in, VipsImage** out) {
    return vips_flip(in, out, VIPS_DIRECTION_HORIZONTAL, nullptr);
  });
  VipsImage* frames[] = {first.get(), second.get()};
  VipsImage* joined = nullptr;
  ASSERT_EQ(vips_arrayjoin(frames, &joined, 2, "across", 1, nullptr), 0);
  UniqueImage animation(joined);
  vips_image_set_int(animation.get(), VIPS_META_PAGE_HEIGHT, 20);
  for (const char* format : {".gif", ".tif", ".webp"}) {
    Pixels p = Convert(Save(animation.get(), format)).OnlyPixels();
    ASSERT_EQ(p.height(), 20u) << format;
    EXPECT_GT(static_cast<unsigned char>(Pixel(p, 5, 10)[0]), 200) << format;
  }
}

TEST_F(ImageConverterTest, SvgIsRenderedAtItsDeclaredSizeOrScaled) {
  const std::string svg =
      "<svg xmlns='http://www.w3.org/2000/svg' width='40' height='20'>"
      "<rect width='50%' height='100%' fill='red'/></svg>";
  Pixels p = Convert(svg).OnlyPixels();
  EXPECT_EQ(p.width(), 40u);
  EXPECT_EQ(p.height(), 20u);
  EXPECT_EQ(Pixel(p, 5, 10), std::string("\xff\x00\x00\xff", 4));
  EXPECT_EQ(Pixel(p, 35, 10)[3], '\x00');  // nothing drawn: transparent
  Pixels twice = Convert(svg, {.svg_scale = 2}).OnlyPixels();
  EXPECT_EQ(twice.width(), 80u);
  EXPECT_EQ(twice.height(), 40u);
  EXPECT_THROW(ImageConverter({.svg_scale = 0}), std::invalid_argument);
  EXPECT_THROW(ImageConverter({.svg_scale = 100}), std::invalid_argument);
}

// A PNG whose header claims width x height RGB pixels, with one row of data.
std::string PngClaiming(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& body) {
    std::string typed = type + body;
    return be32(body.size()) + typed + be32(crc32(0, reinterpret_cast<const Bytef*>(typed.data()), typed.size()));
  };
  std::string row(1 + size_t{width} * 3, '\0');
  uLongf length = compressBound(row.size());
  std::string idat(length, '\0');
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(idat.data()), &length, reinterpret_cast<const Bytef*>(row.data()),
                     row.size()),
            Z_OK);
  idat.resize(length);
  return "\x89PNG\r\n\x1a\n" + chunk("IHDR", be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5)) +
         chunk("IDAT", idat) + chunk("IEND", "");
}

// A GIF of one frame whose screen and frame claim 65535 x 65535 pixels.
std::string GifBomb() {
  return std::string("GIF89a\xff\xff\xff\xff\x80\x00\x00" "\x00\x00\x00\xff\xff\xff"
                     "\x2c\x00\x00\x00\x00\xff\xff\xff\xff\x00" "\x02\x02\x44\x01\x00" "\x3b",
                     13 + 6 + 10 + 5 + 1);
}

// An 8-bit RLE BMP whose header claims 100000 x 100000 pixels; its data
// is one end-of-bitmap code.
std::string BmpBomb() {
  std::string bmp = "BM";
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp += static_cast<char>(v >> (8 * i));
  };
  le32(14 + 40 + 8 + 2);
  le32(0);
  le32(14 + 40 + 8);
  le32(40);
  le32(100000);
  le32(100000);
  bmp += std::string("\x01\x00\x08\x00", 4);  // 1 plane, 8 bits
  le32(1);                                     // BI_RLE8
  le32(2);
  le32(0);
  le32(0);
  le32(2);  // colours in the palette
  le32(0);
  bmp += std::string("\x00\x00\x00\x00\xff\xff\xff\x00\x00\x01", 10);
  return bmp;
}

TEST_F(ImageConverterTest, ADecompressionBombIsRefusedBeforeDecoding) {
  const std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='100000' height='100000'/>";
  for (const std::string& bomb : {PngClaiming(100000, 100000), GifBomb(), BmpBomb(), svg}) {
    const auto start = std::chrono::steady_clock::now();
    Recorder sink = Convert(bomb);
    EXPECT_EQ(sink.OnlyFinding(), "limit.pixels") << bomb.substr(0, 4);
    // Decoding 10 billion pixels would take minutes, and fail anyway.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << bomb.substr(0, 4);
  }
}

TEST_F(ImageConverterTest, TheLimitIsTheJobsOrTheConverters) {
  const std::string png = Save(Halves(40, 20, 3).get(), ".png");
  EXPECT_EQ(Convert(png, {.max_pixels = 799}).OnlyFinding(), "limit.pixels");
  EXPECT_EQ(Convert(png, {.max_pixels = 800}).OnlyPixels().width(), 40u);
  EXPECT_EQ(Convert(png, {}, 799).OnlyFinding(), "limit.pixels");
  EXPECT_EQ(Convert(png, {.max_pixels = 1}, 800).OnlyPixels().width(), 40u);
  // The limit applies to the rendered size of an SVG.
  const std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='40' height='20'/>";
  EXPECT_EQ(Convert(svg, {}, 800).records.size(), 1u);
  EXPECT_EQ(Convert(svg, {.svg_scale = 2}, 800).OnlyFinding(), "limit.pixels");
}

TEST_F(ImageConverterTest, WhatIsNotAnAcceptedImageThrows) {
  const std::string png = Save(Halves(40, 20, 3).get(), ".png");
  for (const std::string& bad : {
           std::string(), std::string("hello, world\n"), std::string(4096, '\xa5'),
           std::string("BM"),             // a BMP header cut short
           png.substr(0, 20),             // a PNG cut inside its header
           std::string("2 2\n0 1\n1 0\n"),  // a libvips matrix file
           Save(Halves(4, 4, 3).get(), ".hdr"),  // Radiance: radload stays blocked
           test::ReadCorpusFile("dangerzone-test-docs/test_docs/sample-pdf.pdf"),  // pdfload stays blocked
       }) {
    EXPECT_THROW(Convert(bad), ConvertError) << bad.substr(0, 16);
  }
}

// Cut anywhere, the corpus images either decode to well-formed pixels or
// throw ConvertError.
TEST_F(ImageConverterTest, TruncatedImagesFailCleanly) {
  for (const CorpusImage& image : kCorpus) {
    const std::string bytes = test::ReadCorpusFile(image.path);
    for (size_t length : {size_t{10}, bytes.size() / 3, bytes.size() - 100}) {
      try {
        Recorder sink = Convert(std::string_view(bytes).substr(0, length));
        Pixels p = sink.OnlyPixels();
        EXPECT_EQ(p.data().size(), size_t{p.width()} * p.height() * p.channels()) << image.path;
      } catch (const ConvertError&) {
      }
    }
  }
}

// libvips keeps the threads it started while warming up, so the tests
// below see no thread start inside the sandbox; one that a job needs all
// the same must not be a violation. In a child of its own: a threaded
// process cannot enter a user namespace.
TEST(ConverterSandbox, AThreadStartsAndNamesItself) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    EnterSandbox(ConverterPolicy(uint64_t{1} << 30));
    // libvips' own name: glibc names a thread (prctl) only when the name
    // fits in 15 bytes.
    GThread* thread = g_thread_new("libvips worker", [](gpointer) -> gpointer { return nullptr; }, nullptr);
    g_thread_join(thread);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

// fontconfig checks its files with access(), on whichever libvips thread
// renders an SVG's text (a worker was killed for it in CI): existence
// checks in the read-only root are allowed.
TEST(ConverterSandbox, AThreadMayAskWhetherAFileExists) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    EnterSandbox(ConverterPolicy(uint64_t{1} << 30));
    GThread* thread = g_thread_new("libvips worker", [](gpointer) -> gpointer {
      access("/etc/fonts/fonts.conf", R_OK);
      faccessat(AT_FDCWD, "/usr/share/fonts", R_OK, AT_EACCESS);  // glibc: faccessat2
      return nullptr;
    }, nullptr);
    g_thread_join(thread);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

// The real mugai-worker, sandboxed: every format decodes under its seccomp
// allow-list, empty root and rlimits, and the failures are findings.
class SandboxedWorkerTest : public ImageConverterTest {
 protected:
  SandboxedWorkerTest() {
    WorkerPoolOptions options;
    options.executable = MUGAI_BIN_DIR "/mugai-worker";
    options.size = 1;
    pool_ = std::make_unique<WorkerPool>(options);
    pool_->Start();
  }

  JobResult Run(const std::string& content) {
    v1::worker::Job job;
    job.set_converter("image");
    job.set_content(content);
    job.set_max_output_bytes(1 << 20);
    return pool_->Run(job, Clock::now() + std::chrono::seconds(30), kPixelRecords);
  }

  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(SandboxedWorkerTest, EveryFormatDecodesInTheSandbox) {
  std::vector<std::string> inputs;
  for (const CorpusImage& image : kCorpus) inputs.push_back(test::ReadCorpusFile(image.path));
  for (std::string& sample : ImageWarmUpSamples()) inputs.push_back(std::move(sample));
  // librsvg may render filters on threads of its own; a larger image takes
  // libvips more than one tile.
  inputs.push_back(
      "<svg xmlns='http://www.w3.org/2000/svg' width='600' height='400'><filter id='b'>"
      "<feGaussianBlur stdDeviation='8'/><feTurbulence baseFrequency='0.05'/></filter>"
      "<rect width='600' height='400' fill='red' filter='url(#b)'/><text x='10' y='50'>日本語 text</text></svg>");
  inputs.push_back(Save(Halves(3000, 2000, 4).get(), ".png"));
  for (size_t i = 0; i < inputs.size(); ++i) {
    JobResult r = Run(inputs[i]);
    ASSERT_EQ(r.status, JobStatus::kOk) << i << " " << r.detail;
    ASSERT_EQ(r.records.size(), 1u) << i;
    ASSERT_TRUE(r.records[0].has_pixels()) << i << " " << r.records[0].finding().reason();
    if (i < std::size(kCorpus)) ExpectPicture(r.records[0].pixels(), kCorpus[i].path);
  }
  EXPECT_EQ(pool_->restarts(), 0u);
  bool seccomp = false;
  const v1::worker::WorkerHello hello = pool_->protections();
  for (const std::string& layer : hello.protections()) seccomp |= layer.starts_with("seccomp");
  EXPECT_TRUE(seccomp);
}

// The largest image the default limit lets through decodes within the
// worker's 1 GiB of address space: as 16-bit RGBA (the most memory a
// decoder needs per pixel), and as a JPEG that must be rotated.
TEST_F(SandboxedWorkerTest, AnImageAtTheLimitFitsInTheWorkersMemory) {
  UniqueImage rgb16 = Derive(Halves(8000, 5000, 4), [](VipsImage* in, VipsImage** out) {
    return vips_colourspace(in, out, VIPS_INTERPRETATION_RGB16, nullptr);
  });
  JobResult r = Run(Save(rgb16.get(), ".png[compression=1]"));
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.records[0].has_pixels()) << r.records[0].finding().reason();
  EXPECT_EQ(r.records[0].pixels().width(), 8000u);
  EXPECT_EQ(r.records[0].pixels().channels(), 4u);
  // A camera's JPEG to turn upright: decoded whole, then rotated.
  UniqueImage photo = Derive(Halves(8000, 5000, 3), [](VipsImage* in, VipsImage** out) {
    if (vips_copy(in, out, nullptr) != 0) return -1;
    vips_image_set_int(*out, VIPS_META_ORIENTATION, 6);
    return 0;
  });
  r = Run(Save(photo.get(), ".jpg"));
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.records[0].has_pixels()) << r.records[0].finding().reason();
  EXPECT_EQ(r.records[0].pixels().width(), 5000u);
}

TEST_F(SandboxedWorkerTest, BombsAndGarbageAreFindingsInTheSandbox) {
  for (const std::string& bomb : {PngClaiming(100000, 100000), GifBomb(), BmpBomb()}) {
    JobResult r = Run(bomb);
    ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].finding().code(), "limit.pixels");
  }
  // librsvg refuses references to files; in the sandbox there are none
  // to find anyway. The rest of the drawing renders.
  JobResult svg = Run(
      "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' width='20' height='20'>"
      "<image width='20' height='20' xlink:href='file:///etc/passwd'/><rect width='10' height='10'/></svg>");
  ASSERT_EQ(svg.status, JobStatus::kOk) << svg.detail;
  ASSERT_EQ(svg.records.size(), 1u);
  EXPECT_TRUE(svg.records[0].has_pixels());
  JobResult garbage = Run("not an image");
  ASSERT_EQ(garbage.status, JobStatus::kOk) << garbage.detail;
  ASSERT_EQ(garbage.records.size(), 1u);
  EXPECT_EQ(garbage.records[0].finding().code(), "parse.failed");
  EXPECT_EQ(pool_->restarts(), 0u);
}

}  // namespace
}  // namespace mugai

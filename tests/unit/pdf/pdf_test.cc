#include <cairo.h>
#include <gtest/gtest.h>
#include <poppler.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sanitizers/pdf/flattened_pdf.h"
#include "sanitizers/pdf/page_encoding.h"
#include "sanitizers/pdf/pdf_converter.h"
#include "tests/unit/test_support.h"

// For LeakSanitizer builds: fontconfig 2.14 leaks 288 bytes, once per
// process, while it parses its configuration on Poppler's first font lookup
// (FcInitLoadConfigAndFonts). Matched by library: without frame pointers in
// fontconfig, LSan's fast unwinder sees no frame above it.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

namespace mugai {
namespace {

using v1::worker::Record;

constexpr char kSample[] = "dangerzone-test-docs/test_docs/sample-pdf.pdf";

using test::ReadCorpusFile;

struct Recorder : test::Recorder {
  std::vector<v1::worker::Pixels> Pixels() const {
    std::vector<v1::worker::Pixels> pages;
    for (const Record& r : records) {
      if (r.has_pixels()) pages.push_back(r.pixels());
    }
    return pages;
  }
  // The one record, which must be a finding; its code.
  std::string OnlyFinding() const {
    if (records.size() != 1 || !records[0].has_finding()) return "not exactly one finding";
    return records[0].finding().code();
  }
};

Recorder Convert(std::string_view content, PdfConverterOptions options = {}) {
  Recorder sink;
  PdfConverter(options).Convert({"test.pdf", content, 1 << 20}, sink);
  return sink;
}

Recorder ConvertCorpusFile(const std::string& path, PdfConverterOptions options = {}) {
  return Convert(ReadCorpusFile(path), options);
}

// Poppler in the test itself, to check the converter's output against and to
// read the flattened PDFs back.
struct ObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
using UniqueDocument = std::unique_ptr<PopplerDocument, ObjectUnref>;
using UniquePage = std::unique_ptr<PopplerPage, ObjectUnref>;

class Pdf {
 public:
  // `bytes` must outlive the Pdf.
  explicit Pdf(std::string_view bytes) {
    g_autoptr(GBytes) data = g_bytes_new_static(bytes.data(), bytes.size());
    g_autoptr(GError) error = nullptr;
    doc_.reset(poppler_document_new_from_bytes(data, nullptr, &error));
    if (!doc_) throw std::runtime_error(error ? error->message : "cannot open");
  }
  PopplerDocument* doc() const { return doc_.get(); }
  int pages() const { return poppler_document_get_n_pages(doc_.get()); }
  UniquePage page(int i) const { return UniquePage(poppler_document_get_page(doc_.get(), i)); }

  bool HasFonts() const {
    std::unique_ptr<PopplerFontInfo, ObjectUnref> info(poppler_font_info_new(doc_.get()));
    PopplerFontsIter* iter = nullptr;
    bool found = poppler_font_info_scan(info.get(), pages(), &iter);
    if (iter) poppler_fonts_iter_free(iter);
    return found;
  }

 private:
  UniqueDocument doc_;
};

struct PageContents {
  std::string text;
  size_t links = 0, annots = 0, fields = 0, images = 0;
};

PageContents Contents(PopplerPage* page) {
  PageContents contents;
  g_autofree char* text = poppler_page_get_text(page);
  contents.text = text ? text : "";
  GList* links = poppler_page_get_link_mapping(page);
  contents.links = g_list_length(links);
  poppler_page_free_link_mapping(links);
  GList* annots = poppler_page_get_annot_mapping(page);
  contents.annots = g_list_length(annots);
  poppler_page_free_annot_mapping(annots);
  GList* fields = poppler_page_get_form_field_mapping(page);
  contents.fields = g_list_length(fields);
  poppler_page_free_form_field_mapping(fields);
  GList* images = poppler_page_get_image_mapping(page);
  contents.images = g_list_length(images);
  poppler_page_free_image_mapping(images);
  return contents;
}

// Pixels that are not white.
size_t Ink(const v1::worker::Pixels& page) {
  size_t ink = 0;
  const std::string& data = page.data();
  for (size_t i = 0; i + 2 < data.size(); i += 3) {
    if (data.compare(i, 3, "\xff\xff\xff") != 0) ++ink;
  }
  return ink;
}

std::vector<PixelView> AsPageImages(const std::vector<v1::worker::Pixels>& pixels) {
  std::vector<PixelView> pages;
  for (const auto& p : pixels) pages.push_back({p.width(), p.height(), p.channels(), p.data()});
  return pages;
}

// The flattened PDF of `pages`, each encoded as the daemon encodes it.
std::string WriteFlattenedPdf(const std::vector<PixelView>& pages, double dpi) {
  FlattenedPdfWriter writer(dpi);
  for (const PixelView& page : pages) writer.AddPage(EncodePage(page));
  return writer.Finish();
}

TEST(PdfConverter, RendersEveryPageAtTheRequestedDpi) {
  std::string original = ReadCorpusFile(kSample);
  Pdf pdf(original);
  ASSERT_EQ(pdf.pages(), 4);
  for (double dpi : {150.0, 100.0}) {
    std::vector<v1::worker::Pixels> pages = Convert(original, {.dpi = dpi}).Pixels();
    ASSERT_EQ(pages.size(), 4u) << dpi;
    for (int i = 0; i < 4; ++i) {
      double width, height;
      poppler_page_get_size(pdf.page(i).get(), &width, &height);
      EXPECT_EQ(pages[i].width(), std::lround(width * dpi / 72)) << i;
      EXPECT_EQ(pages[i].height(), std::lround(height * dpi / 72)) << i;
      EXPECT_EQ(pages[i].channels(), 3u);
      EXPECT_EQ(pages[i].data().size(), size_t{pages[i].width()} * pages[i].height() * 3);
    }
  }
}

TEST(PdfConverter, PagesAreInkOnWhite) {
  std::vector<v1::worker::Pixels> pages = ConvertCorpusFile(kSample).Pixels();
  ASSERT_EQ(pages.size(), 4u);
  for (const auto& page : pages) {
    EXPECT_EQ(page.data().substr(0, 3), "\xff\xff\xff");  // the top left corner is margin
    EXPECT_GT(Ink(page), 1000u);
    EXPECT_LT(Ink(page), size_t{page.width()} * page.height() / 2);
  }
}

TEST(PdfConverter, JapaneseWithEmbeddedFontsRenders) {
  for (const char* path : {"pdf/cjk/issue16063.pdf", "pdf/cjk/issue6387.pdf", "pdf/cjk/vertical.pdf"}) {
    std::vector<v1::worker::Pixels> pages = ConvertCorpusFile(path).Pixels();
    ASSERT_FALSE(pages.empty()) << path;
    EXPECT_GT(Ink(pages[0]), 1000u) << path;
  }
}

// Fonts named but not embedded, in Japanese CMaps (Shift_JIS, EUC-JP, JIS):
// Poppler needs the CMaps of poppler-data and a Japanese font from
// fontconfig (fonts-noto-cjk). Without poppler-data these pages come out
// blank, silently.
TEST(PdfConverter, JapaneseWithoutEmbeddedFontsRenders) {
  for (const char* path : {"pdf/cjk/noembed-sjis.pdf", "pdf/cjk/noembed-eucjp.pdf", "pdf/cjk/noembed-jis7.pdf",
                           "pdf/cjk/90ms_rksj_h_sample.pdf", "pdf/cjk/issue11555.pdf"}) {
    std::vector<v1::worker::Pixels> pages = ConvertCorpusFile(path).Pixels();
    ASSERT_FALSE(pages.empty()) << path;
    EXPECT_GT(Ink(pages[0]), 1000u) << path;
  }
}

TEST(PdfConverter, DocumentNeedingAPasswordIsAFinding) {
  for (const char* path : {"pdf/encrypted/issue6010_1.pdf", "pdf/encrypted/pr6531_1.pdf",
                           "pdf/encrypted/libreoffice-writer-password.pdf", "pdf/encrypted/issue21579.pdf",
                           "pdf/encrypted/saslprep-r6.pdf"}) {
    Recorder sink = ConvertCorpusFile(path);
    EXPECT_EQ(sink.OnlyFinding(), "document.encrypted") << path;
  }
}

// Encrypted with an empty user password (only an owner password, which
// restricts printing or copying): every reader opens these, so they are
// rendered like any other.
TEST(PdfConverter, DocumentWithOnlyAnOwnerPasswordRenders) {
  for (const char* path : {"pdf/encrypted/issue17215.pdf", "pdf/encrypted/issue7665.pdf",
                           "pdf/encrypted/secHandler.pdf", "pdf/encrypted/issue9972-1.pdf"}) {
    Recorder sink = ConvertCorpusFile(path);
    ASSERT_EQ(sink.Pixels().size(), 1u) << path;
    EXPECT_EQ(sink.records.size(), 1u) << path;
    EXPECT_GT(Ink(sink.Pixels()[0]), 0u) << path;
  }
}

TEST(PdfConverter, UnreadableDocumentsThrow) {
  for (const char* path : {"dangerzone-test-docs/test_docs/sample_bad_pdf.pdf", "pdf/malformed/bug1020226.pdf",
                           "pdf/malformed/REDHAT-1531897-0.pdf", "pdf/malformed/issue15590.pdf"}) {
    EXPECT_THROW(ConvertCorpusFile(path), ConvertError) << path;
  }
  EXPECT_THROW(Convert(""), ConvertError);
  EXPECT_THROW(Convert("%PDF-1.7\n"), ConvertError);
}

// Whatever Poppler makes of a malformed file, the converter either throws
// ConvertError or emits well-formed records; it never crashes. Not
// bomb_giant.pdf (JBIG2 images of 100000 x 100000): only the worker's
// limits defuse it. Under a 1 GiB RLIMIT_AS Poppler fails the allocation and
// drops the images in 20 ms; unlimited, as here, it decodes them for
// minutes, so it belongs with the sandboxed worker's tests.
TEST(PdfConverter, MalformedDocumentsFailCleanly) {
  const auto dir = std::filesystem::path(MUGAI_CORPUS_DIR) / "pdf/malformed";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename() == "bomb_giant.pdf") continue;
    const std::string path = "pdf/malformed/" + entry.path().filename().string();
    ++files;
    try {
      Recorder sink = ConvertCorpusFile(path);
      EXPECT_FALSE(sink.records.empty()) << path;
      for (const auto& page : sink.Pixels()) {
        EXPECT_EQ(page.data().size(), size_t{page.width()} * page.height() * page.channels()) << path;
      }
    } catch (const ConvertError&) {
    }
  }
  EXPECT_GE(files, 8);
}

TEST(PdfConverter, TooManyPagesIsAFindingAndNoPixels) {
  Recorder over = ConvertCorpusFile(kSample, {.max_pages = 3});
  EXPECT_EQ(over.OnlyFinding(), "limit.pages");
  EXPECT_NE(over.records[0].finding().reason().find("4 pages"), std::string::npos);
  EXPECT_EQ(ConvertCorpusFile(kSample, {.max_pages = 4}).Pixels().size(), 4u);
}

TEST(PdfConverter, TooLargeAPageIsAFindingAndNoPixels) {
  // A US Letter page at 150 DPI is 1275 x 1650 pixels.
  Recorder over = ConvertCorpusFile(kSample, {.max_page_pixels = 1275 * 1650 - 1});
  EXPECT_EQ(over.OnlyFinding(), "limit.pixels");
  EXPECT_EQ(ConvertCorpusFile(kSample, {.max_page_pixels = 1275 * 1650}).Pixels().size(), 4u);
  // Higher resolution is more pixels, never a shrunk page.
  EXPECT_EQ(ConvertCorpusFile(kSample, {.dpi = 300, .max_page_pixels = 1275 * 1650}).OnlyFinding(), "limit.pixels");
}

TEST(PdfConverter, TooManyPixelsInAllIsAFindingAndNoPixels) {
  Recorder over = ConvertCorpusFile(kSample, {.max_total_pixels = 4 * 1275 * 1650 - 1});
  EXPECT_EQ(over.OnlyFinding(), "limit.pixels");
  EXPECT_NE(over.records[0].finding().reason().find("4 pages"), std::string::npos);
  EXPECT_EQ(ConvertCorpusFile(kSample, {.max_total_pixels = 4 * 1275 * 1650}).Pixels().size(), 4u);
}

TEST(PdfConverter, PagesLongerThanTheSideLimitAreAFinding) {
  // 10001 x 1 points: 20835 x 2 pixels at 150 DPI, 41671 x 4 at 300 DPI.
  for (const char* path : {"dangerzone-test-docs/test_docs/sample_bad_max_width.pdf",
                           "dangerzone-test-docs/test_docs/sample_bad_max_height.pdf"}) {
    EXPECT_EQ(ConvertCorpusFile(path).OnlyFinding(), "limit.pixels") << path;
    // Without the side limit, cairo's own (32767) is the bound.
    std::vector<v1::worker::Pixels> pages = ConvertCorpusFile(path, {.max_page_side = 40'000}).Pixels();
    ASSERT_EQ(pages.size(), 1u) << path;
    EXPECT_EQ(std::max(pages[0].width(), pages[0].height()), 20835u) << path;
    EXPECT_EQ(ConvertCorpusFile(path, {.dpi = 300, .max_page_side = 40'000}).OnlyFinding(), "limit.pixels") << path;
  }
}

TEST(PdfConverter, RejectsAnUnusableDpi) {
  EXPECT_THROW(PdfConverter({.dpi = 0}), std::invalid_argument);
  EXPECT_THROW(PdfConverter({.dpi = NAN}), std::invalid_argument);
  EXPECT_THROW(PdfConverter({.dpi = 1e6}), std::invalid_argument);
}

TEST(FlattenedPdf, RoundTripKeepsPagesAndNothingElse) {
  std::string original = ReadCorpusFile(kSample);
  Pdf before(original);
  ASSERT_FALSE(Contents(before.page(0).get()).text.empty());
  ASSERT_TRUE(before.HasFonts());

  std::vector<v1::worker::Pixels> pixels = Convert(original).Pixels();
  ASSERT_EQ(pixels.size(), 4u);
  std::string flattened = WriteFlattenedPdf(AsPageImages(pixels), 150);
  ASSERT_TRUE(flattened.starts_with("%PDF-"));

  Pdf after(flattened);
  ASSERT_EQ(after.pages(), before.pages());
  for (int i = 0; i < after.pages(); ++i) {
    double width_before, height_before, width_after, height_after;
    poppler_page_get_size(before.page(i).get(), &width_before, &height_before);
    poppler_page_get_size(after.page(i).get(), &width_after, &height_after);
    EXPECT_NEAR(width_after, width_before, 0.5) << i;
    EXPECT_NEAR(height_after, height_before, 0.5) << i;
    PageContents contents = Contents(after.page(i).get());
    EXPECT_EQ(contents.text, "") << i;
    EXPECT_EQ(contents.links, 0u) << i;
    EXPECT_EQ(contents.annots, 0u) << i;
    EXPECT_EQ(contents.images, 1u) << i;
  }
  EXPECT_FALSE(after.HasFonts());
  EXPECT_FALSE(poppler_document_has_attachments(after.doc()));
}

// Rendering the flattened PDF again at the same resolution gives back the
// pixels it was made from, to within the palette reduction of anti-aliased
// edges: the image fills its page exactly.
TEST(FlattenedPdf, RoundTripKeepsThePixels) {
  std::vector<v1::worker::Pixels> first = ConvertCorpusFile(kSample).Pixels();
  ASSERT_EQ(first.size(), 4u);
  std::string flattened = WriteFlattenedPdf(AsPageImages(first), 150);
  std::vector<v1::worker::Pixels> second = Convert(flattened).Pixels();
  ASSERT_EQ(second.size(), 4u);
  for (size_t i = 0; i < first.size(); ++i) {
    ASSERT_EQ(second[i].width(), first[i].width());
    ASSERT_EQ(second[i].height(), first[i].height());
    const std::string& a = first[i].data();
    const std::string& b = second[i].data();
    uint64_t difference = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      difference += std::abs(int{static_cast<unsigned char>(a[j])} - int{static_cast<unsigned char>(b[j])});
    }
    EXPECT_LT(static_cast<double>(difference) / a.size(), 2.0) << i;
  }
}

// Documents full of active content come out as bare images.
TEST(FlattenedPdf, ActiveContentIsGone) {
  for (const char* path : {"pdf/active/with-attachment.pdf", "pdf/active/js-buttons.pdf",
                           "pdf/active/annotation-text-widget.pdf", "pdf/forms/libreoffice-form.pdf",
                           "pdf/text/TAMReview.pdf"}) {
    std::string original = ReadCorpusFile(path);
    std::vector<v1::worker::Pixels> pixels = Convert(original).Pixels();
    ASSERT_FALSE(pixels.empty()) << path;
    std::string flattened = WriteFlattenedPdf(AsPageImages(pixels), 150);
    Pdf after(flattened);
    ASSERT_EQ(after.pages(), Pdf(original).pages()) << path;
    for (int i = 0; i < after.pages(); ++i) {
      PageContents contents = Contents(after.page(i).get());
      EXPECT_EQ(contents.text, "") << path;
      EXPECT_EQ(contents.links + contents.annots + contents.fields, 0u) << path;
    }
    EXPECT_FALSE(poppler_document_has_attachments(after.doc())) << path;
    EXPECT_FALSE(after.HasFonts()) << path;
    for (const char* key : {"/JavaScript", "/OpenAction", "/AcroForm", "/Annots", "/EmbeddedFile", "/URI",
                            "/Launch", "/XFA", "/Metadata"}) {
      EXPECT_EQ(flattened.find(key), std::string::npos) << path << " " << key;
    }
  }
}

// A 40 x 20 image: left half black, right half white (gray); red, or fully
// transparent (RGBA).
std::string Halves(int channels, std::string_view left, std::string_view right) {
  std::string data;
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 40; ++x) data += x < 20 ? left : right;
  }
  EXPECT_EQ(data.size(), 40u * 20 * channels);
  return data;
}

TEST(FlattenedPdf, GrayAndRgbaPagesComeOutRight) {
  std::string gray = Halves(1, std::string_view("\x00", 1), "\xff");
  std::string rgba = Halves(4, std::string_view("\xff\x00\x00\xff", 4), std::string_view("\x00\x00\x00\x00", 4));
  std::string flattened = WriteFlattenedPdf({{40, 20, 1, gray}, {40, 20, 4, rgba}}, 72);
  std::vector<v1::worker::Pixels> pages = Convert(flattened, {.dpi = 72}).Pixels();
  ASSERT_EQ(pages.size(), 2u);
  auto pixel = [](const v1::worker::Pixels& page, int x, int y) {
    return page.data().substr((size_t{page.width()} * y + x) * 3, 3);
  };
  EXPECT_EQ(pages[0].width(), 40u);
  EXPECT_EQ(pages[0].height(), 20u);
  EXPECT_EQ(pixel(pages[0], 5, 10), std::string(3, '\0'));
  EXPECT_EQ(pixel(pages[0], 35, 10), "\xff\xff\xff");
  EXPECT_EQ(pixel(pages[1], 5, 10), std::string("\xff\x00\x00", 3));
  EXPECT_EQ(pixel(pages[1], 35, 10), "\xff\xff\xff");  // transparent is white
}

TEST(FlattenedPdf, RejectsMalformedInput) {
  EXPECT_THROW(FlattenedPdfWriter(0), std::invalid_argument);
  EXPECT_THROW(FlattenedPdfWriter(NAN), std::invalid_argument);
  EXPECT_THROW(FlattenedPdfWriter(150).Finish(), std::logic_error);
  FlattenedPdfWriter writer(150);
  EncodedPage page = EncodePage({1, 1, 3, std::string(3, '\0')});
  EncodedPage bad_palette = page;
  bad_palette.palette += "abcdef";  // 3 colours for 1 bit a pixel
  EXPECT_THROW(writer.AddPage(bad_palette), std::invalid_argument);
  EncodedPage bad_depth = page;
  bad_depth.bits_per_component = 3;
  EXPECT_THROW(writer.AddPage(bad_depth), std::invalid_argument);
  EncodedPage empty = page;
  empty.data.clear();
  EXPECT_THROW(writer.AddPage(empty), std::invalid_argument);
  writer.AddPage(page);
  EXPECT_TRUE(writer.Finish().starts_with("%PDF-"));
}

}  // namespace
}  // namespace mugai

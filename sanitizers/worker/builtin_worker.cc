#include "sanitizers/worker/builtin_worker.h"

#include <clocale>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "sanitizers/archive/archive_converter.h"
#include "sanitizers/core/log.h"
#include "sanitizers/html/html_converter.h"
#include "sanitizers/image/image_converter.h"
#include "sanitizers/pdf/pdf_converter.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/text/text_converter.h"

namespace mugai {

std::unique_ptr<Converter> MakeBuiltinConverter(std::string_view name) {
  if (name == "text") return std::make_unique<TextConverter>();
  if (name == "html") return std::make_unique<HtmlConverter>();
  if (name == "pdf") return std::make_unique<PdfConverter>();
  if (name == "image") return std::make_unique<ImageConverter>();
  if (name == "archive") return std::make_unique<ArchiveConverter>();
  return nullptr;
}

int WorkerMain(int argc, char** argv, const ConverterFactory& factory) {
  SetLogProgram("mugai-worker");
  std::optional<WorkerFlags> flags = ParseWorkerFlags(argc, argv);
  if (!flags) return 2;
  // libarchive converts the names it knows the charset of (UTF-16 in 7z,
  // rar and Joliet, flagged UTF-8 in zip) to the locale's charset; the
  // locale must be set before the root without locale files is entered.
  std::setlocale(LC_CTYPE, "C.UTF-8");
  // Japanese text in the charsets iconv loads on demand, and HTML.
  static constexpr std::pair<const char*, std::string_view> kWarmUp[] = {
      {"text", "\x93\xfa\x96\x7b\x8c\xea"}, {"text", "\xc6\xfc\xcb\xdc"},
      {"text", "\x1b$BF|K\\\x1b(B"}, {"html", "<p>a</p>"},
      // A zip of one empty member named 日本 in CP932: libarchive, and the
      // CP932 and EUC-JP modules its names are decoded with.
      {"archive", std::string_view(
                       "\x50\x4b\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                       "\x00\x00\x04\x00\x00\x00\x93\xfa\x96\x7b\x50\x4b\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00"
                       "\x21\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                       "\x00\x00\x00\x00\x00\x00\x00\x00\x93\xfa\x96\x7b\x50\x4b\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00"
                       "\x32\x00\x00\x00\x22\x00\x00\x00\x00\x00",
                       106)},
      // A page with a font to look up: fontconfig reads its configuration now.
      {"pdf", "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n4 0 obj<</Length 31>>stream\nBT /F1 12 Tf 10 10 Td (a) Tj ET\nendstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"}};
  auto warm_up = [&](std::string_view name, std::string_view sample) {
    struct Discard : RecordSink {
      void Emit(v1::worker::Record) override {}
    } discard;
    if (std::unique_ptr<Converter> converter = factory(name)) {
      try {
        converter->Convert({"warm-up", sample, 1 << 20}, discard);
      } catch (const std::exception&) {
      }
    }
  };
  return ConfineAndServe(*flags, ConverterPolicy(flags->memory_bytes), factory, [&] {
    for (const auto& [name, sample] : kWarmUp) warm_up(name, sample);
    // Every image format, built in memory by libvips itself.
    for (const std::string& sample : ImageWarmUpSamples()) warm_up("image", sample);
  });
}

}  // namespace mugai

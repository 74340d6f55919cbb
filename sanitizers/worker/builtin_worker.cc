#include "sanitizers/worker/builtin_worker.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>

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
  return nullptr;
}

int WorkerMain(int argc, char** argv, const ConverterFactory& factory) {
  SetLogProgram("mugai-worker");
  std::optional<WorkerFlags> flags = ParseWorkerFlags(argc, argv);
  if (!flags) return 2;
  // Japanese text in the charsets iconv loads on demand, and HTML.
  static constexpr std::pair<const char*, std::string_view> kWarmUp[] = {
      {"text", "\x93\xfa\x96\x7b\x8c\xea"}, {"text", "\xc6\xfc\xcb\xdc"},
      {"text", "\x1b$BF|K\\\x1b(B"}, {"html", "<p>a</p>"},
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

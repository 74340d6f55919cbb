#include "sanitizers/worker/builtin_worker.h"

#include <fcntl.h>
#include <glib.h>
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "sanitizers/archive/archive_converter.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"
#include "sanitizers/html/html_converter.h"
#include "sanitizers/image/image_converter.h"
#include "sanitizers/mail/mail_converter.h"
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
  if (name == "mail") return std::make_unique<MailConverter>();
  return nullptr;
}

namespace {

// Warnings of the GLib-based libraries (GMime, libvips, Poppler) into the
// worker's log, made printable and bounded: they may quote the sender's
// bytes. Debug and info messages are dropped.
GLogWriterOutput WriteGlibLog(GLogLevelFlags level, const GLogField* fields, gsize count, gpointer) {
  constexpr size_t kMaxBytes = 300;
  if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))) return G_LOG_WRITER_HANDLED;
  std::string text = "GLib: ";
  for (gsize i = 0; i < count; ++i) {
    if (std::string_view(fields[i].key) != "MESSAGE" || fields[i].value == nullptr) continue;
    std::string_view message = fields[i].length < 0 ? std::string_view(static_cast<const char*>(fields[i].value))
                                                    : std::string_view(static_cast<const char*>(fields[i].value),
                                                                       static_cast<size_t>(fields[i].length));
    for (char c : message.substr(0, kMaxBytes)) text += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  LogWarn(text);
  return G_LOG_WRITER_HANDLED;
}

}  // namespace

int WorkerMain(int argc, char** argv, const ConverterFactory& factory) {
  SetLogProgram("mugai-worker");
  std::optional<WorkerFlags> flags = ParseWorkerFlags(argc, argv);
  if (!flags) return 2;
  // libarchive converts the names it knows the charset of (UTF-16 in 7z,
  // rar and Joliet, flagged UTF-8 in zip) to the locale's charset; the
  // locale must be set before the root without locale files is entered.
  std::setlocale(LC_CTYPE, "C.UTF-8");
  // libytnef reports a malformed winmail.dat with printf: to nowhere (its
  // text is the sender's), and unbuffered, since glibc's first write to a
  // buffered stdout asks isatty(), an ioctl seccomp kills the worker for.
  if (UniqueFd null(open("/dev/null", O_WRONLY | O_CLOEXEC)); null.valid()) dup2(null.get(), STDOUT_FILENO);
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  // GLib's own log writer asks isatty() and getsockname() too.
  g_log_set_writer_func(WriteGlibLog, nullptr, nullptr);
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
      // Mail: GMime, the iconv modules of Japanese headers and bodies, HTML,
      // and libytnef on a winmail.dat with one member.
      {"mail",
       "Subject: =?ISO-2022-JP?B?GyRCRnxLXBsoQg==?=\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
       "\x1b$BF|K\\\x1b(B\r\n"},
      {"mail",
       "Subject: =?Shift_JIS?B?k/qWew==?=\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n\x93\xfa\x96\x7b\r\n"},
      {"mail",
       "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=EUC-JP\r\n\r\n"
       "<p>\xc6\xfc\xcb\xdc</p>\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n"
       "eJ8+IgAAAQaQCAAEAAAAAAABAAEAAgKQBgAOAAAAAQD/////AAAAAAAAAAD9AwIQgAEABgAAAGEudHh0AO8BAg+ABgADAAAAaGkK2wA=\r\n"
       "--b--\r\n"},
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

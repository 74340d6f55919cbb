#include "sanitizers/pipeline/policy.h"

#include <utility>

#include "sanitizers/worker/record_validator.h"

namespace mugai {

std::optional<Conversion> ConversionFor(std::string_view mime_type, std::string_view description) {
  static constexpr Conversion kText{"text", "convert_text", DerivativeKind::kText, kTextRecords};
  static constexpr Conversion kHtml{"html", "convert_html", DerivativeKind::kText, kTextRecords};
  static constexpr Conversion kPdf{"pdf", "convert_pdf", DerivativeKind::kFlattenedPdf, kPixelRecords};
  static constexpr Conversion kImage{"image", "convert_image", DerivativeKind::kImage, kPixelRecords};
  static constexpr Conversion kOffice{"office", "convert_office", DerivativeKind::kFlattenedPdfOfChild,
                                      kChildRecords, WorkerKind::kOffice};
  static constexpr Conversion kArchive{"archive", "unpack_archive", DerivativeKind::kArchive, kChildRecords};
  // An allow-list, deliberately: libmagic reports scripts as text/x-shellscript,
  // text/x-python and so on, and those must stay blocked.
  static constexpr std::pair<std::string_view, Conversion> kAllowed[] = {
      {"text/plain", kText},
      {"text/csv", kText},
      {"application/csv", kText},
      {"text/html", kHtml},
      {"application/pdf", kPdf},
      // Images; SVG is rendered to pixels like the rest.
      {"image/png", kImage},
      {"image/jpeg", kImage},
      {"image/gif", kImage},
      {"image/bmp", kImage},
      {"image/x-ms-bmp", kImage},
      {"image/tiff", kImage},
      {"image/webp", kImage},
      {"image/x-portable-bitmap", kImage},
      {"image/x-portable-greymap", kImage},
      {"image/x-portable-pixmap", kImage},
      {"image/x-portable-anymap", kImage},
      {"image/svg+xml", kImage},
      // Office documents, through LibreOffice to PDF. Macros never run:
      // LibreOffice only converts, and the result is pixels.
      {"application/msword", kOffice},
      {"application/vnd.ms-excel", kOffice},
      {"application/vnd.ms-powerpoint", kOffice},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", kOffice},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.template", kOffice},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", kOffice},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.template", kOffice},
      {"application/vnd.openxmlformats-officedocument.presentationml.presentation", kOffice},
      {"application/vnd.openxmlformats-officedocument.presentationml.slideshow", kOffice},
      {"application/vnd.openxmlformats-officedocument.presentationml.template", kOffice},
      {"application/vnd.ms-word.document.macroenabled.12", kOffice},
      {"application/vnd.ms-excel.sheet.macroenabled.12", kOffice},
      {"application/vnd.ms-powerpoint.presentation.macroenabled.12", kOffice},
      {"application/vnd.oasis.opendocument.text", kOffice},
      {"application/vnd.oasis.opendocument.text-template", kOffice},
      {"application/vnd.oasis.opendocument.spreadsheet", kOffice},
      {"application/vnd.oasis.opendocument.spreadsheet-template", kOffice},
      {"application/vnd.oasis.opendocument.presentation", kOffice},
      {"application/vnd.oasis.opendocument.presentation-template", kOffice},
      {"application/vnd.oasis.opendocument.graphics", kOffice},
      {"application/vnd.oasis.opendocument.graphics-template", kOffice},
      {"text/rtf", kOffice},
      // An OLE2 container libmagic cannot name further (old Office files,
      // and encrypted OOXML, which the converter reports as such).
      {"application/x-ole-storage", kOffice},
      {"application/encrypted", kOffice},
      {"application/CDFV2", kOffice},
      {"application/vnd.ms-office", kOffice},
      {"application/vnd.ms-visio.drawing.main+xml", kOffice},
      // Archives and compressors libarchive reads (sanitizers/archive/);
      // ARJ, for one, is not among them and stays blocked.
      {"application/zip", kArchive},
      {"application/x-7z-compressed", kArchive},
      {"application/x-rar", kArchive},
      {"application/vnd.rar", kArchive},
      {"application/x-tar", kArchive},
      {"application/x-cpio", kArchive},
      {"application/vnd.ms-cab-compressed", kArchive},
      {"application/x-lzh-compressed", kArchive},
      {"application/x-iso9660-image", kArchive},
      {"application/gzip", kArchive},
      {"application/x-bzip2", kArchive},
      {"application/x-xz", kArchive},
      {"application/x-lzma", kArchive},
      {"application/x-lzip", kArchive},
      {"application/x-lz4", kArchive},
      {"application/zstd", kArchive},
      {"application/x-compress", kArchive},
  };
  for (const auto& [type, conversion] : kAllowed) {
    if (type == mime_type) return conversion;
  }
  if (mime_type == "application/octet-stream" && description == "Microsoft OOXML") return kOffice;
  return std::nullopt;
}

}  // namespace mugai

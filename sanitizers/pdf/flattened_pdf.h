// Trusted side: writes the flattened PDF that replaces a document, one page
// at a time, from page images a worker rendered and EncodePage
// (sanitizers/pdf/page_encoding.h) encoded. Its input is primitive data
// only, so whatever the original contained, the output holds nothing but one
// image per page: no text, fonts, links, annotations, forms, scripts,
// attachments, outlines or metadata of the original (and no /Info of its
// own). qpdf writes the file, embedding each page's stream as encoded.
#pragma once

#include <memory>
#include <string>

#include "sanitizers/pdf/page_encoding.h"

class QPDF;

namespace mugai {

class FlattenedPdfWriter {
 public:
  // Pages are rendered at `dpi`: a page image of W x H pixels becomes a page
  // of W * 72 / dpi by H * 72 / dpi points. Throws std::invalid_argument
  // unless 0 < dpi <= 2400.
  explicit FlattenedPdfWriter(double dpi);
  ~FlattenedPdfWriter();
  FlattenedPdfWriter(const FlattenedPdfWriter&) = delete;
  FlattenedPdfWriter& operator=(const FlattenedPdfWriter&) = delete;

  // Appends a page filled by `page`. The writer keeps the encoded stream
  // (not the pixels), so memory grows with the size of the output only.
  // Throws std::invalid_argument for an inconsistent page.
  void AddPage(EncodedPage page);

  size_t pages() const { return pages_; }

  // The PDF. Throws std::logic_error when no page was added, and
  // std::runtime_error when qpdf fails. The writer is spent afterwards.
  std::string Finish();

 private:
  const double scale_;  // points per pixel
  std::unique_ptr<QPDF> pdf_;
  size_t pages_ = 0;
};

}  // namespace mugai

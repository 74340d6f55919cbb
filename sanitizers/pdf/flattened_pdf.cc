#include "sanitizers/pdf/flattened_pdf.h"

#include <qpdf/Buffer.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFObjectHandle.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFPageObjectHelper.hh>
#include <qpdf/QPDFWriter.hh>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace mugai {
namespace {

using Object = QPDFObjectHandle;

void CheckPage(const EncodedPage& page) {
  if (page.width == 0 || page.height == 0 || page.data.empty()) throw std::invalid_argument("empty page image");
  const uint32_t bits = page.bits_per_component;
  if (bits != 1 && bits != 2 && bits != 4 && bits != 8) throw std::invalid_argument("page image bit depth");
  if (page.channels != 1 && page.channels != 3) throw std::invalid_argument("page image channels");
  if (!page.palette.empty()) {
    const size_t colors = page.palette.size() / 3;
    if (page.palette.size() % 3 != 0 || colors > (size_t{1} << bits) || page.channels != 1) {
      throw std::invalid_argument("page image palette");
    }
  }
  if (page.filter == EncodedPage::Filter::kDct && (bits != 8 || !page.palette.empty())) {
    throw std::invalid_argument("JPEG page image must be 8-bit gray or RGB");
  }
}

Object ColorSpace(const EncodedPage& page) {
  if (page.palette.empty()) return Object::newName(page.channels == 1 ? "/DeviceGray" : "/DeviceRGB");
  return Object::newArray({Object::newName("/Indexed"), Object::newName("/DeviceRGB"),
                           Object::newInteger(static_cast<long long>(page.palette.size() / 3) - 1),
                           Object::newString(page.palette)});
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

}  // namespace

FlattenedPdfWriter::FlattenedPdfWriter(double dpi) : scale_(72 / dpi), pdf_(std::make_unique<QPDF>()) {
  if (!(dpi > 0 && dpi <= 2400)) throw std::invalid_argument("flattened PDF DPI out of range");
  pdf_->emptyPDF();
}

FlattenedPdfWriter::~FlattenedPdfWriter() = default;

void FlattenedPdfWriter::AddPage(EncodedPage page) {
  CheckPage(page);
  if (!pdf_) throw std::logic_error("the flattened PDF is already finished");
  Object image = pdf_->newStream();
  image.replaceStreamData(page.data,
                          Object::newName(page.filter == EncodedPage::Filter::kDct ? "/DCTDecode" : "/FlateDecode"),
                          Object::newNull());
  Object dict = image.getDict();
  dict.replaceKey("/Type", Object::newName("/XObject"));
  dict.replaceKey("/Subtype", Object::newName("/Image"));
  dict.replaceKey("/Width", Object::newInteger(page.width));
  dict.replaceKey("/Height", Object::newInteger(page.height));
  dict.replaceKey("/ColorSpace", ColorSpace(page));
  dict.replaceKey("/BitsPerComponent", Object::newInteger(page.bits_per_component));
  page.data = std::string();  // qpdf has its own copy now

  const std::string width = Number(page.width * scale_), height = Number(page.height * scale_);
  Object content = pdf_->newStream("q " + width + " 0 0 " + height + " 0 0 cm /Im0 Do Q\n");
  Object resources = Object::newDictionary();
  Object xobjects = Object::newDictionary();
  xobjects.replaceKey("/Im0", image);
  resources.replaceKey("/XObject", xobjects);
  Object page_dict = Object::newDictionary();
  page_dict.replaceKey("/Type", Object::newName("/Page"));
  page_dict.replaceKey("/MediaBox", Object::newArray({Object::newInteger(0), Object::newInteger(0),
                                                      Object::newReal(width), Object::newReal(height)}));
  page_dict.replaceKey("/Resources", resources);
  page_dict.replaceKey("/Contents", content);
  QPDFPageDocumentHelper(*pdf_).addPage(QPDFPageObjectHelper(pdf_->makeIndirectObject(page_dict)), false);
  ++pages_;
}

std::string FlattenedPdfWriter::Finish() {
  if (pages_ == 0) throw std::logic_error("a flattened PDF needs at least one page");
  if (!pdf_) throw std::logic_error("the flattened PDF is already finished");
  QPDFWriter writer(*pdf_);
  writer.setOutputMemory();
  // The page streams are compressed already and must stay as they are.
  writer.setDecodeLevel(qpdf_dl_none);
  writer.write();
  std::shared_ptr<Buffer> buffer = writer.getBufferSharedPointer();
  std::string bytes(reinterpret_cast<const char*>(buffer->getBuffer()), buffer->getSize());
  pdf_.reset();
  return bytes;
}

}  // namespace mugai

// The "office" converter: LibreOffice (headless) turns a word-processing,
// spreadsheet, presentation or drawing document (doc, docx, docm, xls,
// xlsx, xlsm, ppt, pptx, pptm, odt, ods, odp, odg, rtf, ...) into a PDF,
// which comes back as exactly one Child record (name: the claimed name +
// ".pdf"). The daemon then renders that PDF in the PDF worker to pixels, so
// nothing LibreOffice writes is ever trusted or delivered as such.
//
// Each job runs a fresh soffice.bin in a directory of its own under the
// scratch root (input, output, a throw-away user profile, HOME, TMPDIR),
// removed afterwards; nothing of one document's run is seen by the next.
// The run is bounded by ConvertInput::time_limit (kDefaultTimeLimit when
// 0): past it, LibreOffice's whole process group is killed and the job
// ends in limit.time. A LibreOffice that fails, exits non-zero, is killed
// or writes no PDF is a ConvertError (parse.failed), never a pass.
//
// Password-protected documents (see office_encryption.h) are a
// document.encrypted finding, with the kind of protection as the reason.
// LibreOffice is still given the chance: a file protected with Excel's
// default password "VelvetSweatshop" (a workbook marked read-only, which
// Excel and LibreOffice open without asking) holds no secret and is
// converted like any other; only one that needs a real password is held.
//
// Meant for the Office worker (mugai-office-worker, OfficePolicy), which
// may run programs; in the converter worker's sandbox it cannot start one.
#pragma once

#include <chrono>
#include <string>

#include "sanitizers/worker/converter.h"

namespace mugai {

class OfficeConverter : public Converter {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeLimit{60'000};

  // `scratch_root`: a private, writable directory (the sandbox's scratch
  // tmpfs) in which each job makes its own.
  explicit OfficeConverter(std::string scratch_root,
                           std::string soffice = "/usr/lib/libreoffice/program/soffice.bin")
      : scratch_root_(std::move(scratch_root)), soffice_(std::move(soffice)) {}

  void Convert(const ConvertInput& input, RecordSink& sink) override;

 private:
  std::string scratch_root_;
  std::string soffice_;
};

}  // namespace mugai

// Recognizes password-protected Office documents from their bytes, so that
// they come out as document.encrypted rather than as a conversion failure.
// Runs in the Office worker, on untrusted bytes: every offset and length
// read from the file is bounds-checked, and chains are bounded by the
// number of sectors the file can hold.
//
// Recognized:
//   - OOXML (docx, xlsx, pptx, ...) with a password: not a zip at all but a
//     Compound File (CFB/OLE2) holding EncryptionInfo and EncryptedPackage
//     streams (MS-OFFCRYPTO; libmagic calls it "CDFV2 Encrypted");
//   - Word 97-2003: the FIB's fEncrypted (RC4, CryptoAPI or XOR);
//   - Excel 97-2003 (and 5.0/95): a FILEPASS record in the workbook globals;
//   - PowerPoint 97-2003: the encrypted CurrentUserAtom token, or an
//     EncryptedSummary stream;
//   - OpenDocument (odt, ods, odp, odg, ...): encryption-data for its
//     members in META-INF/manifest.xml.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mugai {

// A readable description of the protection (e.g. "an Excel 97-2003
// workbook protected with a password (FILEPASS record)"), or nullopt when
// the bytes show none.
std::optional<std::string> DescribeOfficeEncryption(std::string_view content);

}  // namespace mugai

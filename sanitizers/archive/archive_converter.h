// Unpacks an archive with libarchive, inside a converter worker: zip (Zip64
// included; the central directory is what counts), 7z, rar (4 and 5), tar,
// cpio, cab, lzh/lha and iso9660, under one layer of gzip, bzip2, xz, lzma,
// lzip, zstd, lz4 or compress, and the single-file compressors themselves (a
// .gz of one file). One layer only: a compressed compressed file is one
// child, still compressed, for the daemon to recurse into (libarchive
// 3.6.2's own filter stacking takes minutes over a gzip quine). Nothing is
// written anywhere: each regular file member becomes one Child record (its
// path, as UTF-8, exactly as stored: "../x" and "/etc/x" too, the daemon
// sanitizes paths; and its bytes), for the daemon to run through the whole
// pipeline. Directories produce nothing. Needs LC_CTYPE set to a UTF-8
// locale (C.UTF-8) for libarchive to convert the names whose charset the
// format declares.
//
// Member names: names flagged or valid as UTF-8 stay as they are; other
// names are decoded as CP932 (Windows' Shift_JIS) or EUC-JP, whichever
// decodes (both: the one with fewer half-width katakana); a name that is
// neither keeps U+FFFD for the bytes it could not read. Once an archive's
// name has shown CP932 or EUC-JP, its names that are valid UTF-8 only by
// accident (no 3-byte sequence) are read in that charset too. CAB's
// backslashes become slashes. A single-file compressor's member is named
// after the claimed name without its compression suffix ("data" when there
// is none).
//
// Findings, with the member's path as their subject where there is one:
//   archive.encrypted    an encrypted member or encrypted headers; the job
//                        stops there (members before it have been sent:
//                        the daemon holds the whole item on this finding)
//   archive.link         a symbolic or hard link member (refused, not
//                        followed; the reason names the target)
//   archive.special_file a device, FIFO or socket member (refused)
//   limit.members        more entries (of any kind) than max_members
//   limit.ratio          more bytes unpacked than max_ratio_bytes
//   limit.expanded_size  more bytes unpacked than max_expanded_bytes
//   limit.file_size      one member larger than max_member_bytes
//   limit.time           ConvertInput.time_limit passed
// A zero in an ArchiveOptions field (or time_limit) is no limit from it: the
// daemon always sets them. The size limits are checked in the order above
// (a bomb is over its ratio first) on the size a member's header declares,
// before anything is decompressed, and again while it is read, block by
// block, so a bomb whose header lies stops after at most one 64 KiB block
// beyond the limit; the job then stops. Corrupt data, a format or method
// libarchive cannot read (PKWARE implode), and bytes that are no archive
// throw ConvertError (parse.failed).
#pragma once

#include "sanitizers/worker/converter.h"

namespace mugai {

class ArchiveConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai

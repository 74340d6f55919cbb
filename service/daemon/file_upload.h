// What the ingress calls that take a file share (SanitizeFile,
// SubmitFile): reading its chunks, sanitizing it, recording the outcome
// before anything is delivered, logging it, and sending bytes in chunks.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sanitizers/core/findings.h"
#include "sanitizers/pipeline/file_sanitizer.h"
#include "service/metrics/metrics.h"
#include "service/store/item_store.h"
#include "service/wire_limits.h"

namespace mugai {

// Why an upload was refused before the pipeline saw it.
struct UploadRefusal {
  std::string_view code;
  std::string reason;
};

// The bytes of an upload whose header announced `size`: the chunks that
// follow it, or why they are not an acceptable upload. An oversized upload
// is refused before anything is read, so its bytes never reach memory.
template <typename Request, typename Stream>
std::optional<UploadRefusal> ReadChunks(grpc::ServerContext* context, Stream* stream, uint64_t size,
                                        uint64_t max_bytes, std::string_view limit_code, std::string* content) {
  if (size > max_bytes) {
    return UploadRefusal{limit_code, "the upload has " + std::to_string(size) + " bytes; the limit is " +
                                         std::to_string(max_bytes)};
  }
  content->reserve(size);
  Request request;
  bool overflow = false;
  while (stream->Read(&request)) {
    if (!request.has_chunk()) {
      return UploadRefusal{finding::kInputMalformed, "a second header arrived after " +
                                                         std::to_string(content->size()) +
                                                         " bytes; only chunks may follow the first"};
    }
    if (content->size() + request.chunk().size() > size) {
      overflow = true;
      break;
    }
    *content += request.chunk();
  }
  if (context->IsCancelled()) {
    return UploadRefusal{finding::kInputTruncated, "the client went away after " + std::to_string(content->size()) +
                                                       " of " + std::to_string(size) + " bytes"};
  }
  if (overflow || content->size() != size) {
    return UploadRefusal{finding::kInputSizeMismatch, "announced " + std::to_string(size) + " bytes, received " +
                                                          (overflow ? "more" : std::to_string(content->size()))};
  }
  return std::nullopt;
}

// The outcome of a file read as `content` (nullopt `refused`) or refused
// by ReadChunks: sanitized by `files` — or rejected, or held when
// sanitizing failed — with the file's summary (kind "file", the preview of
// a text rendering).
SanitizedFile SanitizeReadFile(const FileSanitizer& files, const std::string& name,
                               const std::string& declared_type, uint64_t size, const std::string& content,
                               std::optional<UploadRefusal> refused);

// A file upload's outcome: its chunks read into *content (ReadChunks), then
// as SanitizeReadFile.
template <typename Request, typename Stream>
SanitizedFile SanitizeUpload(grpc::ServerContext* context, Stream* stream, const FileSanitizer& files,
                             const std::string& name, const std::string& declared_type, uint64_t size,
                             std::string* content) {
  std::optional<UploadRefusal> refused = ReadChunks<Request>(context, stream, size, files.limits().max_file_bytes,
                                                             finding::kLimitFileSize, content);
  return SanitizeReadFile(files, name, declared_type, size, *content, std::move(refused));
}

// Records the outcome (and `inbox`, if any), durably, before anything is
// delivered: an item whose outcome cannot be recorded is refused with
// UNAVAILABLE (the sender retries). *fresh (when not null) is false when
// inbox's submit_key was used before: result.report is then the earlier
// report.
grpc::Status RecordOutcome(ItemStore& store, Metrics& metrics, SanitizedFile& result, const std::string& original,
                           const InboxDelivery* inbox = nullptr, bool* fresh = nullptr);

// One log line for an item: `what` ("item", "message"), its id, name, type,
// outcome, finding codes and time since `started`, then `extra`.
void LogOutcome(const SanitizedFile& result, std::chrono::steady_clock::time_point started, std::string_view what,
                std::string_view extra = "");

// Writes `bytes` as chunks made by `chunk` (at least one, even when empty).
template <typename Stream, typename MakeChunk>
bool WriteChunks(Stream* stream, const std::string& bytes, const MakeChunk& chunk) {
  for (size_t offset = 0; offset == 0 || offset < bytes.size(); offset += kChunkBytes) {
    if (!stream->Write(chunk(bytes.substr(offset, kChunkBytes)))) return false;
  }
  return true;
}

inline grpc::Status ClientGone() { return {grpc::StatusCode::CANCELLED, "the client went away"}; }

}  // namespace mugai

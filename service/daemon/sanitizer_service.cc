#include <chrono>

#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "service/daemon/services.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

std::string FindingCodes(const v1::ItemReport& item) {
  std::string codes;
  for (const v1::Finding& f : item.findings()) codes += (codes.empty() ? "" : ",") + f.code();
  return codes.empty() ? "-" : codes;
}

}  // namespace

grpc::Status SanitizerService::SanitizeFile(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SanitizeFileResponse, v1::SanitizeFileRequest>* stream) {
  const auto started = std::chrono::steady_clock::now();
  v1::SanitizeFileRequest request;
  if (!stream->Read(&request) || !request.has_header()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a FileHeader"};
  }
  const v1::FileHeader header = request.header();
  const uint64_t max_bytes = sanitizer_.limits().max_file_bytes;

  // Decide before buffering anything: an oversized upload is refused
  // without reading it, and its bytes never reach memory.
  SanitizedFile result;
  std::string content;
  if (header.size() > max_bytes) {
    result = RejectFile(header.name(), header.declared_type(), header.size(), finding::kLimitFileSize,
                        "the file has " + std::to_string(header.size()) +
                            " bytes; the limit is " + std::to_string(max_bytes));
  } else {
    content.reserve(header.size());
    bool overflow = false;
    bool malformed = false;
    while (stream->Read(&request)) {
      if (!request.has_chunk()) {
        malformed = true;
        break;
      }
      if (content.size() + request.chunk().size() > header.size()) {
        overflow = true;
        break;
      }
      content += request.chunk();
    }
    if (malformed) {
      result = RejectFile(header.name(), header.declared_type(), content.size(),
                          finding::kInputMalformed,
                          "a second FileHeader arrived after " + std::to_string(content.size()) +
                              " bytes; only chunks may follow the first");
    } else if (context->IsCancelled()) {
      result = RejectFile(header.name(), header.declared_type(), content.size(),
                          finding::kInputTruncated,
                          "the client went away after " + std::to_string(content.size()) + " of " +
                              std::to_string(header.size()) + " bytes");
    } else if (overflow || content.size() != header.size()) {
      result = RejectFile(header.name(), header.declared_type(), content.size(),
                          finding::kInputSizeMismatch,
                          "announced " + std::to_string(header.size()) + " bytes, received " +
                              (overflow ? "more" : std::to_string(content.size())));
    } else {
      const FileSubmission file{header.name(), header.declared_type(), content};
      try {
        result = sanitizer_.Sanitize(file);
      } catch (const std::exception& e) {
        // Out of memory, say: the item is held, not lost.
        LogError(std::string("sanitizing failed: ") + e.what());
        result = HoldUnfinished(file, e.what());
      }
    }
  }

  // Nothing is delivered unless its outcome is on disk first.
  try {
    store_.Record(&result.report, result.hold_original ? &content : nullptr);
  } catch (const StoreError& e) {
    LogError(std::string("cannot record an outcome, refusing the item: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the outcome could not be recorded; try again later"};
  }
  const v1::ItemReport& item = result.report.item();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started).count();
  LogInfo("item " + result.report.item_id() + " \"" + item.claimed_name() + "\" " +
          item.detected_type() + " " + result.report.outcome() + " [" + FindingCodes(item) + "] " +
          std::to_string(ms) + "ms");
  if (context->IsCancelled()) return {grpc::StatusCode::CANCELLED, "the client went away"};

  v1::SanitizeFileResponse response;
  *response.mutable_report() = result.report;
  if (!stream->Write(response)) return {grpc::StatusCode::CANCELLED, "the client went away"};
  for (size_t i = 0; i < result.derivatives.size(); ++i) {
    const std::string& bytes = result.derivatives[i];
    for (size_t offset = 0; offset == 0 || offset < bytes.size(); offset += kChunkBytes) {
      v1::SanitizeFileResponse chunk;
      chunk.mutable_chunk()->set_index(static_cast<uint32_t>(i));
      chunk.mutable_chunk()->set_data(bytes.substr(offset, kChunkBytes));
      if (!stream->Write(chunk)) return {grpc::StatusCode::CANCELLED, "the client went away"};
    }
  }
  return grpc::Status::OK;
}

}  // namespace mugai

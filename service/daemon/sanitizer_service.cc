#include <chrono>
#include <optional>

#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "service/daemon/services.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

std::string FindingCodes(const v1::ItemReport& item) {
  std::string codes;
  for (const v1::Finding& f : item.findings()) codes += (codes.empty() ? "" : ",") + f.code();
  return codes.empty() ? "-" : codes;
}

// Why an upload was refused before the pipeline saw it.
struct Refusal {
  std::string_view code;
  std::string reason;
};

// The bytes of an upload whose header announced `size`: the chunks that
// follow it, or why they are not an acceptable upload. An oversized upload
// is refused before anything is read, so its bytes never reach memory.
template <typename Request, typename Stream>
std::optional<Refusal> ReadChunks(grpc::ServerContext* context, Stream* stream, uint64_t size, uint64_t max_bytes,
                                  std::string_view limit_code, std::string* content) {
  if (size > max_bytes) {
    return Refusal{limit_code, "the upload has " + std::to_string(size) + " bytes; the limit is " +
                                   std::to_string(max_bytes)};
  }
  content->reserve(size);
  Request request;
  bool overflow = false;
  while (stream->Read(&request)) {
    if (!request.has_chunk()) {
      return Refusal{finding::kInputMalformed, "a second header arrived after " + std::to_string(content->size()) +
                                                   " bytes; only chunks may follow the first"};
    }
    if (content->size() + request.chunk().size() > size) {
      overflow = true;
      break;
    }
    *content += request.chunk();
  }
  if (context->IsCancelled()) {
    return Refusal{finding::kInputTruncated, "the client went away after " + std::to_string(content->size()) +
                                                 " of " + std::to_string(size) + " bytes"};
  }
  if (overflow || content->size() != size) {
    return Refusal{finding::kInputSizeMismatch, "announced " + std::to_string(size) + " bytes, received " +
                                                    (overflow ? "more" : std::to_string(content->size()))};
  }
  return std::nullopt;
}

// Records the outcome, durably, before anything is delivered: an item
// whose outcome cannot be recorded is refused (the sender retries).
grpc::Status RecordOutcome(ItemStore& store, SanitizedFile& result, const std::string& original) {
  try {
    store.Record(&result.report, result.hold_original ? &original : nullptr, result.summary);
  } catch (const StoreError& e) {
    LogError(std::string("cannot record an outcome, refusing the item: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the outcome could not be recorded; try again later"};
  }
  return grpc::Status::OK;
}

void LogOutcome(const SanitizedFile& result, std::chrono::steady_clock::time_point started, std::string_view what) {
  const v1::ItemReport& item = result.report.item();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  LogInfo(std::string(what) + " " + result.report.item_id() + " \"" + item.claimed_name() + "\" " +
          item.detected_type() + " " + result.report.outcome() + " [" + FindingCodes(item) + "] " +
          std::to_string(ms) + "ms");
}

// Writes `bytes` as chunks made by `chunk` (at least one, even when empty).
template <typename Stream, typename MakeChunk>
bool WriteChunks(Stream* stream, const std::string& bytes, const MakeChunk& chunk) {
  for (size_t offset = 0; offset == 0 || offset < bytes.size(); offset += kChunkBytes) {
    if (!stream->Write(chunk(bytes.substr(offset, kChunkBytes)))) return false;
  }
  return true;
}

// A file's summary for the vault: the start of its text, when it was
// delivered as text.
void SummarizeFile(SanitizedFile& result) {
  result.summary.set_kind("file");
  const v1::ItemReport& item = result.report.item();
  if ((item.action() == "convert_text" || item.action() == "convert_html") && !result.derivatives.empty()) {
    result.summary.set_preview(PreviewOf(result.derivatives[0]));
  }
}

// The SMTP envelope as the relay gave it: untrusted bytes, made safe text.
void AddEnvelope(const v1::MessageHeader& header, v1::ItemSummary& summary) {
  summary.set_sender(MakeSafeLine(ToValidUtf8(header.envelope_sender())));
  for (const std::string& recipient : header.envelope_recipients()) {
    summary.add_recipients(MakeSafeLine(ToValidUtf8(recipient)));
  }
}

const grpc::Status kClientGone{grpc::StatusCode::CANCELLED, "the client went away"};

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
  std::string content;
  SanitizedFile result;
  if (std::optional<Refusal> refused = ReadChunks<v1::SanitizeFileRequest>(
                                      context, stream, header.size(), files_.limits().max_file_bytes,
                                      finding::kLimitFileSize, &content)) {
    result = RejectFile(header.name(), header.declared_type(), std::max<uint64_t>(content.size(), header.size()),
                        refused->code, std::move(refused->reason));
  } else {
    const FileSubmission file{header.name(), header.declared_type(), content};
    try {
      result = files_.Sanitize(file);
    } catch (const std::exception& e) {
      // Out of memory, say: the item is held, not lost.
      LogError(std::string("sanitizing failed: ") + e.what());
      result = HoldUnfinished(file, e.what());
    }
  }
  SummarizeFile(result);
  if (grpc::Status recorded = RecordOutcome(store_, result, content); !recorded.ok()) return recorded;
  LogOutcome(result, started, "item");
  if (context->IsCancelled()) return kClientGone;

  v1::SanitizeFileResponse response;
  *response.mutable_report() = result.report;
  if (!stream->Write(response)) return kClientGone;
  for (size_t i = 0; i < result.derivatives.size(); ++i) {
    const bool written = WriteChunks(stream, result.derivatives[i], [i](std::string data) {
      v1::SanitizeFileResponse chunk;
      chunk.mutable_chunk()->set_index(static_cast<uint32_t>(i));
      chunk.mutable_chunk()->set_data(std::move(data));
      return chunk;
    });
    if (!written) return kClientGone;
  }
  return grpc::Status::OK;
}

grpc::Status SanitizerService::SanitizeMessage(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SanitizeMessageResponse, v1::SanitizeMessageRequest>* stream) {
  const auto started = std::chrono::steady_clock::now();
  v1::SanitizeMessageRequest request;
  if (!stream->Read(&request) || !request.has_header()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a MessageHeader"};
  }
  const v1::MessageHeader header = request.header();
  std::string content;
  SanitizedFile result;
  if (std::optional<Refusal> refused = ReadChunks<v1::SanitizeMessageRequest>(
                                      context, stream, header.size(), files_.limits().max_file_bytes,
                                      finding::kLimitMessageSize, &content)) {
    result = RejectFile("", "message/rfc822", std::max<uint64_t>(content.size(), header.size()), refused->code,
                        std::move(refused->reason));
  } else {
    ItemStore::Stamp stamp;
    try {
      stamp = store_.Reserve();
    } catch (const StoreError& e) {
      LogError(std::string("cannot issue an item id, refusing the message: ") + e.what());
      return {grpc::StatusCode::UNAVAILABLE, "no item id could be issued; try again later"};
    }
    try {
      result = mail_.Sanitize(content, stamp.id);
    } catch (const std::exception& e) {
      LogError(std::string("sanitizing a message failed: ") + e.what());
      result = HoldUnfinished({"", "message/rfc822", content}, e.what());
    }
    result.report.set_item_id(stamp.id);
    result.report.set_received_at(stamp.received_at);
  }
  result.summary.set_kind("mail");
  AddEnvelope(header, result.summary);
  if (grpc::Status recorded = RecordOutcome(store_, result, content); !recorded.ok()) return recorded;
  LogOutcome(result, started, "message");
  if (context->IsCancelled()) return kClientGone;

  v1::SanitizeMessageResponse response;
  *response.mutable_report() = result.report;
  if (!stream->Write(response)) return kClientGone;
  if (result.derivatives.size() == 1) {
    const bool written = WriteChunks(stream, result.derivatives[0], [](std::string data) {
      v1::SanitizeMessageResponse chunk;
      chunk.set_chunk(std::move(data));
      return chunk;
    });
    if (!written) return kClientGone;
  }
  return grpc::Status::OK;
}

}  // namespace mugai

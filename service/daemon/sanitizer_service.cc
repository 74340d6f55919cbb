#include <chrono>
#include <optional>

#include "sanitizers/core/log.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "service/daemon/file_upload.h"
#include "service/daemon/services.h"

namespace mugai {
namespace {

// The SMTP envelope as the relay gave it: untrusted bytes, made safe text.
void AddEnvelope(const v1::MessageHeader& header, v1::ItemSummary& summary) {
  summary.set_sender(MakeSafeLine(ToValidUtf8(header.envelope_sender())));
  for (const std::string& recipient : header.envelope_recipients()) {
    summary.add_recipients(MakeSafeLine(ToValidUtf8(recipient)));
  }
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
  std::string content;
  SanitizedFile result = SanitizeUpload<v1::SanitizeFileRequest>(context, stream, files_, header.name(),
                                                                 header.declared_type(), header.size(), &content);
  if (grpc::Status recorded = RecordOutcome(store_, metrics_, result, content); !recorded.ok()) return recorded;
  LogOutcome(result, started, "item");
  if (context->IsCancelled()) return ClientGone();

  v1::SanitizeFileResponse response;
  *response.mutable_report() = result.report;
  if (!stream->Write(response)) return ClientGone();
  for (size_t i = 0; i < result.derivatives.size(); ++i) {
    const bool written = WriteChunks(stream, result.derivatives[i], [i](std::string data) {
      v1::SanitizeFileResponse chunk;
      chunk.mutable_chunk()->set_index(static_cast<uint32_t>(i));
      chunk.mutable_chunk()->set_data(std::move(data));
      return chunk;
    });
    if (!written) return ClientGone();
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
  if (std::optional<UploadRefusal> refused = ReadChunks<v1::SanitizeMessageRequest>(
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
  if (grpc::Status recorded = RecordOutcome(store_, metrics_, result, content); !recorded.ok()) return recorded;
  LogOutcome(result, started, "message");
  if (context->IsCancelled()) return ClientGone();

  v1::SanitizeMessageResponse response;
  *response.mutable_report() = result.report;
  if (!stream->Write(response)) return ClientGone();
  if (result.derivatives.size() == 1) {
    const bool written = WriteChunks(stream, result.derivatives[0], [](std::string data) {
      v1::SanitizeMessageResponse chunk;
      chunk.set_chunk(std::move(data));
      return chunk;
    });
    if (!written) return ClientGone();
  }
  return grpc::Status::OK;
}

}  // namespace mugai

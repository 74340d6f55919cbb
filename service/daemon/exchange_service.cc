#include <chrono>

#include "sanitizers/core/log.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "service/daemon/file_upload.h"
#include "service/daemon/services.h"

namespace mugai {
namespace {

constexpr size_t kMaxIdentityBytes = 256;
// A note is a line or two for the recipient, not a document.
constexpr size_t kMaxNoteBytes = 4096;

// Why `value` cannot name an identity (or be a submit key), or "": it must
// be 1 to kMaxIdentityBytes bytes of UTF-8 without spaces, control, bidi
// or other invisible format characters, so that what an administrator
// reads is what the store compares.
std::string IdentityProblem(std::string_view value) {
  if (value.empty()) return "is empty";
  if (value.size() > kMaxIdentityBytes) {
    return "has " + std::to_string(value.size()) + " bytes; at most " + std::to_string(kMaxIdentityBytes);
  }
  if (!IsValidUtf8(value)) return "is not UTF-8";
  for (std::string_view space : {" ", "\u00a0", "\u3000"}) {
    if (value.find(space) != std::string_view::npos) return "contains a space";
  }
  if (MakeSafeLine(value) != value) return "contains control or invisible characters";
  return "";
}

grpc::Status InvalidArgument(std::string message) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(message)}; }

bool Delivered(const std::string& outcome) { return outcome == "delivered" || outcome == "delivered_with_removals"; }

// An id from the client, for a log line.
std::string Printable(const std::string& id) {
  return MakeSafeLine(ToValidUtf8(std::string_view(id).substr(0, kMaxIdentityBytes)));
}

// The report, and the inbox entries a delivered item made.
grpc::Status Answer(const v1::Report& report, v1::SubmitFileResponse* response) {
  *response->mutable_report() = report;
  if (Delivered(report.outcome())) {
    for (int i = 0; i < report.item().derivatives_size(); ++i) {
      response->add_entry_ids(report.item_id() + "." + std::to_string(i));
    }
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ExchangeService::SubmitFile(grpc::ServerContext* context,
                                         grpc::ServerReader<v1::SubmitFileRequest>* reader,
                                         v1::SubmitFileResponse* response) {
  const auto started = std::chrono::steady_clock::now();
  const CallerIdentity sender = identities_.Identify(*context);
  if (sender.identity.empty()) {
    LogWarn("ingress: a submission from " + context->peer() + " refused, not identified: " + sender.problem);
    return {grpc::StatusCode::UNAUTHENTICATED, "not identified: " + sender.problem};
  }
  v1::SubmitFileRequest request;
  if (!reader->Read(&request) || !request.has_header()) {
    return InvalidArgument("the first message must be a SubmitHeader");
  }
  const v1::SubmitHeader header = request.header();
  // Checked before a byte of the content is read.
  if (std::string problem = IdentityProblem(header.recipient()); !problem.empty()) {
    return InvalidArgument("the recipient " + problem);
  }
  if (std::string problem = IdentityProblem(header.submit_key()); !header.submit_key().empty() && !problem.empty()) {
    return InvalidArgument("the submit key " + problem);
  }
  if (header.note().size() > kMaxNoteBytes) {
    return InvalidArgument("the note has " + std::to_string(header.note().size()) + " bytes; at most " +
                           std::to_string(kMaxNoteBytes));
  }

  if (!header.submit_key().empty()) {
    std::optional<v1::Report> earlier;
    try {
      earlier = store_.FindSubmission(sender.identity, header.submit_key());
    } catch (const StoreError& e) {
      LogError(std::string("cannot look up a submit key, refusing the submission: ") + e.what());
      return {grpc::StatusCode::UNAVAILABLE, "the store cannot be read; try again later"};
    }
    if (earlier) {
      while (reader->Read(&request)) {
      }  // the content was sanitized the first time
      LogInfo("repeated submission " + earlier->item_id() + " from " + sender.identity + ": answered as before");
      return Answer(*earlier, response);
    }
  }
  std::string content;
  SanitizedFile result = SanitizeUpload<v1::SubmitFileRequest>(context, reader, files_, header.name(),
                                                               header.declared_type(), header.size(), &content);
  result.summary.set_sender(sender.identity);
  result.summary.clear_recipients();
  result.summary.add_recipients(header.recipient());
  const std::vector<std::string> nothing;
  // An upload cut off on the way is recorded, but not under its key: the
  // client's retry of the same file must be processed, not answered with
  // the rejection of the broken attempt.
  const bool cut_off = context->IsCancelled() ||
                       (content.size() != header.size() && header.size() <= files_.limits().max_file_bytes);
  const InboxDelivery inbox{header.recipient(), MakeSafeText(ToValidUtf8(header.note())).text,
                            cut_off ? std::string() : header.submit_key(),
                            Delivered(result.report.outcome()) ? &result.derivatives : &nothing};
  bool fresh = true;
  if (grpc::Status recorded = RecordOutcome(store_, metrics_, result, content, &inbox, &fresh); !recorded.ok()) {
    return recorded;
  }
  LogOutcome(result, started, fresh ? "submission" : "repeated submission",
             "from " + sender.identity + " to " + header.recipient());

  return Answer(result.report, response);
}

grpc::Status InboxService::Recipient(const grpc::ServerContext& context, std::string* recipient) const {
  CallerIdentity caller = identities_.Identify(context);
  if (caller.identity.empty()) {
    LogWarn("egress: a call from " + context.peer() + " refused, not identified: " + caller.problem);
    return {grpc::StatusCode::UNAUTHENTICATED, "not identified: " + caller.problem};
  }
  *recipient = std::move(caller.identity);
  return grpc::Status::OK;
}

bool InboxService::MayLeave(const v1::InboxEntry& entry) {
  std::optional<v1::VaultItem> item = store_.Get(entry.item_id());
  const bool may = item && (entry.released_original() ? item->release().decision() == "approved"
                                                      : Delivered(item->outcome()));
  if (!may) {
    LogError("inbox entry " + entry.id() + " is not a delivered item's derivative nor an approved original" +
             (item ? " (item outcome " + item->outcome() + ", state " + item->state() + ")" : " (no such item)") +
             "; withheld");
  }
  return may;
}

grpc::Status InboxService::ListInbox(grpc::ServerContext* context, const v1::ListInboxRequest* request,
                                     v1::ListInboxResponse* response) {
  std::string recipient;
  if (grpc::Status s = Recipient(*context, &recipient); !s.ok()) return s;
  try {
    for (v1::InboxEntry& entry : store_.ListInbox(recipient, request->after_id(), request->limit())) {
      if (MayLeave(entry)) *response->add_entries() = std::move(entry);
    }
  } catch (const StoreError& e) {
    LogError(std::string("cannot list an inbox: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the inbox could not be read; try again later"};
  }
  return grpc::Status::OK;
}

grpc::Status InboxService::FetchDerivative(grpc::ServerContext* context, const v1::FetchDerivativeRequest* request,
                                           grpc::ServerWriter<v1::FetchDerivativeResponse>* writer) {
  std::string recipient;
  if (grpc::Status s = Recipient(*context, &recipient); !s.ok()) return s;
  const grpc::Status not_found{grpc::StatusCode::NOT_FOUND, "no entry " + Printable(request->id()) + " in your inbox"};
  std::optional<ItemStore::InboxFile> file;
  try {
    file = store_.FetchInbox(recipient, request->id());
    if (file && !MayLeave(file->entry)) file.reset();
  } catch (const StoreError& e) {
    LogError(std::string("cannot fetch an inbox entry: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the entry could not be read; try again later"};
  }
  if (!file) {
    LogWarn("inbox: " + recipient + " asked for " + Printable(request->id()) + ", which is not in their inbox");
    return not_found;
  }
  LogInfo("inbox: " + recipient + " fetches " + file->entry.id() + " (" + std::to_string(file->bytes.size()) +
          " bytes" + (file->entry.released_original() ? ", a released original" : "") + ")");
  v1::FetchDerivativeResponse first;
  *first.mutable_entry() = file->entry;
  if (!writer->Write(first)) return ClientGone();
  const bool written = WriteChunks(writer, file->bytes, [](std::string data) {
    v1::FetchDerivativeResponse chunk;
    chunk.set_chunk(std::move(data));
    return chunk;
  });
  return written ? grpc::Status::OK : ClientGone();
}

grpc::Status InboxService::Acknowledge(grpc::ServerContext* context, const v1::AcknowledgeRequest* request,
                                       v1::AcknowledgeResponse*) {
  std::string recipient;
  if (grpc::Status s = Recipient(*context, &recipient); !s.ok()) return s;
  bool acknowledged = false;
  try {
    acknowledged = store_.AcknowledgeInbox(recipient, request->id());
  } catch (const StoreError& e) {
    LogError(std::string("cannot acknowledge an inbox entry: ") + e.what());
    return {grpc::StatusCode::UNAVAILABLE, "the acknowledgement could not be recorded; try again later"};
  }
  if (!acknowledged) {
    LogWarn("inbox: " + recipient + " acknowledged " + Printable(request->id()) + ", which is not in their inbox");
    return {grpc::StatusCode::NOT_FOUND, "no entry " + Printable(request->id()) + " in your inbox"};
  }
  LogInfo("inbox: " + recipient + " acknowledged " + request->id());
  return grpc::Status::OK;
}

}  // namespace mugai

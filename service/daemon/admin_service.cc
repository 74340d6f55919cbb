#include "service/daemon/services.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <optional>

#include "mugai/version.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

template <typename Fn>
grpc::Status Guarded(Fn fn) {
  try {
    return fn();
  } catch (const StoreError& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, std::string("mugaid: ") + e.what()};
  }
}

constexpr size_t kPageSize = 1000;  // the store's largest page

std::string SpaceSeparated(const google::protobuf::RepeatedPtrField<std::string>& values) {
  std::string joined;
  for (const std::string& v : values) joined += (joined.empty() ? "" : " ") + v;
  return joined;
}

std::string NeedName(AdminNeed need) {
  switch (need) {
    case AdminNeed::kIdentity:
      return "an identity";
    case AdminNeed::kViewer:
      return "a role";
    case AdminNeed::kOperator:
      return "operator";
    case AdminNeed::kApprover:
      return "approver";
  }
  return "?";
}

grpc::Status InvalidArgument(std::string message) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(message)}; }

// An administrator's time bound as the store compares it: RFC 3339 UTC to
// the second ("2026-12-01T00:00:00Z"). Accepts a date (midnight UTC) or a
// date and time to the minute or second, with "Z", an offset such as
// "+09:00", or no zone (UTC). nullopt when it is none of these.
std::optional<std::string> ToUtcTimestamp(std::string_view text) {
  // Digits at [at, at + n) as a number, or -1.
  auto number = [&](size_t at, size_t n) {
    int value = -1;
    if (at + n > text.size()) return -1;
    auto [end, error] = std::from_chars(text.data() + at, text.data() + at + n, value);
    return error == std::errc() && end == text.data() + at + n ? value : -1;
  };
  auto is = [&](size_t at, char c) { return at < text.size() && text[at] == c; };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  if (tm.tm_year < 0 || !is(4, '-') || !is(7, '-') || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
      tm.tm_mday > 31) {
    return std::nullopt;
  }
  size_t at = 10;
  if (is(at, 'T') || is(at, ' ')) {
    tm.tm_hour = number(11, 2);
    tm.tm_min = number(14, 2);
    if (!is(13, ':') || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59) return std::nullopt;
    at = 16;
    if (is(at, ':')) {
      tm.tm_sec = number(17, 2);
      if (tm.tm_sec < 0 || tm.tm_sec > 60) return std::nullopt;
      at = 19;
    }
  }
  int offset_minutes = 0;
  if (is(at, 'Z')) {
    ++at;
  } else if (is(at, '+') || is(at, '-')) {
    const int hours = number(at + 1, 2), minutes = number(at + 4, 2);
    if (!is(at + 3, ':') || hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return std::nullopt;
    offset_minutes = (text[at] == '+' ? 1 : -1) * (hours * 60 + minutes);
    at += 6;
  }
  if (at != text.size()) return std::nullopt;
  std::time_t utc = timegm(&tm) - std::time_t{offset_minutes} * 60;
  std::tm normalized;
  char out[32];
  if (gmtime_r(&utc, &normalized) == nullptr ||
      std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &normalized) == 0) {
    return std::nullopt;
  }
  return out;
}

// Normalizes a [from, to) range in place; "" stays unbounded.
grpc::Status NormalizeRange(std::string* from, std::string* to) {
  for (std::string* bound : {from, to}) {
    if (bound->empty()) continue;
    std::optional<std::string> utc = ToUtcTimestamp(*bound);
    if (!utc) {
      return InvalidArgument("\"" + *bound +
                             "\" is not a time: use 2026-12-01, 2026-12-01T09:00:00+09:00 or 2026-12-01T00:00:00Z");
    }
    *bound = std::move(*utc);
  }
  return grpc::Status::OK;
}

// One CSV record (RFC 4180: quoted where needed, CRLF). A cell a
// spreadsheet would take for a formula gets a leading ' (OWASP's rule).
void AppendCsvRecord(std::string* out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) *out += ',';
    std::string cell = cells[i];
    if (!cell.empty() && std::string_view("=+-@\t\r").find(cell.front()) != std::string_view::npos) {
      cell.insert(cell.begin(), '\'');
    }
    if (cell.find_first_of(",\"\r\n") == std::string::npos) {
      *out += cell;
      continue;
    }
    *out += '"';
    for (char c : cell) {
      if (c == '"') *out += '"';
      *out += c;
    }
    *out += '"';
  }
  *out += "\r\n";
}

// Sends CSV in chunks of at most kChunkBytes.
class CsvWriter {
 public:
  explicit CsvWriter(grpc::ServerWriter<v1::ExportLogResponse>* writer) : writer_(writer) {}

  // False once the client has gone.
  bool Add(const std::vector<std::string>& cells) {
    AppendCsvRecord(&buffer_, cells);
    return buffer_.size() < kChunkBytes || Flush();
  }

  bool Flush() {
    for (size_t offset = 0; offset < buffer_.size(); offset += kChunkBytes) {
      v1::ExportLogResponse response;
      response.set_chunk(buffer_.substr(offset, kChunkBytes));
      if (!writer_->Write(response)) return false;
    }
    buffer_.clear();
    return true;
  }

 private:
  grpc::ServerWriter<v1::ExportLogResponse>* writer_;
  std::string buffer_;
};

grpc::Status ClientGone() { return {grpc::StatusCode::CANCELLED, "the client stopped reading"}; }

}  // namespace

grpc::Status AdminService::Refuse(const AdminCaller& caller, std::string_view rpc, std::string_view item_id,
                                  grpc::Status status) {
  store_.Audit(caller.identity.empty() ? "anonymous" : caller.identity, "call.refused", item_id,
               std::string(rpc) + ": " + status.error_message());
  return status;
}

grpc::Status AdminService::Authorize(const grpc::ServerContext& context, std::string_view rpc, AdminNeed need,
                                     std::string_view item_id, AdminCaller* caller) {
  *caller = access_.Identify(context);
  if (caller->Allows(need)) return grpc::Status::OK;
  if (caller->identity.empty()) {
    return Refuse(*caller, rpc, item_id, {grpc::StatusCode::UNAUTHENTICATED, "not identified: " + caller->problem});
  }
  std::string roles;
  for (const std::string& role : caller->RoleNames()) roles += (roles.empty() ? "" : ", ") + role;
  return Refuse(*caller, rpc, item_id,
                {grpc::StatusCode::PERMISSION_DENIED,
                 roles.empty() ? "identity " + caller->identity + " has no roles on this mugaid"
                               : "identity " + caller->identity + " has roles [" + roles + "]; " + std::string(rpc) +
                                     " needs " + NeedName(need)});
}

grpc::Status AdminService::Changed(const AdminCaller& caller, std::string_view rpc, std::string_view item_id,
                                   std::string_view from, ItemStore::Change change, v1::VaultItem* response) {
  const std::string id(item_id);
  switch (change.refusal) {
    case ItemStore::Refusal::kNone:
      *response = std::move(change.item);
      return grpc::Status::OK;
    case ItemStore::Refusal::kNoSuchItem:
      return Refuse(caller, rpc, item_id, {grpc::StatusCode::NOT_FOUND, "no vault item " + id});
    case ItemStore::Refusal::kWrongState: {
      const std::string& state = change.item.state();
      return Refuse(caller, rpc, item_id,
                    {grpc::StatusCode::FAILED_PRECONDITION,
                     "item " + id + (state.empty() ? " has no original in the vault" : " is " + state) + "; " +
                         std::string(rpc) + " needs it " + std::string(from)});
    }
    case ItemStore::Refusal::kSelfApproval:
      return Refuse(caller, rpc, item_id,
                    {grpc::StatusCode::PERMISSION_DENIED,
                     "two-person rule: " + change.item.release().requested_by() + " asked for the release of " + id +
                         ", so another approver must decide"});
  }
  return {grpc::StatusCode::INTERNAL, "unknown refusal from the store"};
}

ReleaseDelivery::Result AdminService::HandOver(const v1::VaultItem& item) {
  const std::string download = "; an approver can download the original";
  const v1::ItemSummary& summary = item.summary();
  if (summary.kind() != "mail") {
    return {false, "not delivered: the file was not submitted to an inbox (it came by SanitizeFile)" + download};
  }
  if (!delivery_) return {false, "not delivered: no delivery path is configured ([release] smtp_url)" + download};
  if (summary.recipients().empty()) return {false, "not delivered: the mail has no envelope recipients" + download};
  std::optional<std::string> original;
  try {
    original = store_.ReadOriginal(item.id());
  } catch (const StoreError& e) {
    return {false, std::string("not delivered: cannot read the original: ") + e.what()};
  }
  if (!original) return {false, "not delivered: the original is no longer in the vault"};
  ReleaseDelivery::Result result = delivery_->DeliverMail(
      *original, summary.sender(), std::vector<std::string>(summary.recipients().begin(), summary.recipients().end()));
  if (!result.delivered) result.detail = "not delivered: " + result.detail + download;
  return result;
}

ItemStore::Change AdminService::Deliver(const v1::VaultItem& item, std::string_view actor) {
  // A submitted file's original goes where its derivatives went.
  if (item.summary().kind() == "file" && !item.summary().recipients().empty()) {
    return store_.ReleaseToInbox(item.id(), actor);
  }
  ReleaseDelivery::Result result = HandOver(item);
  return store_.RecordDelivery(item.id(), actor, result.delivered, result.detail);
}

grpc::Status AdminService::WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                                  v1::WhoAmIResponse* response) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "WhoAmI", AdminNeed::kIdentity, "", &caller); !s.ok()) return s;
    store_.Audit(caller.identity, "call.whoami", "", "");
    response->set_identity(caller.identity);
    for (std::string& role : caller.RoleNames()) response->add_roles(std::move(role));
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::SearchVault(grpc::ServerContext* context, const v1::SearchVaultRequest* request,
                                       v1::SearchVaultResponse* response) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "SearchVault", AdminNeed::kViewer, "", &caller); !s.ok()) return s;
    VaultQuery query;
    query.received_from = request->received_from();
    query.received_to = request->received_to();
    query.sender = request->sender();
    query.recipient = request->recipient();
    query.subject = request->subject();
    query.finding_code = request->finding_code();
    query.outcome = request->outcome();
    query.state = request->state();
    query.limit = request->limit();
    query.before_id = request->before_id();
    if (grpc::Status s = NormalizeRange(&query.received_from, &query.received_to); !s.ok()) return s;
    std::string detail;
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string*>{"from", &query.received_from}, {"to", &query.received_to},
          {"sender", &query.sender}, {"recipient", &query.recipient}, {"subject", &query.subject},
          {"code", &query.finding_code}, {"outcome", &query.outcome}, {"state", &query.state},
          {"before", &query.before_id}}) {
      if (!value->empty()) detail += (detail.empty() ? "" : " ") + std::string(name) + "=" + *value;
    }
    store_.Audit(caller.identity, "call.search", "", detail);
    for (v1::VaultItem& item : store_.Search(query)) *response->add_items() = std::move(item);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::GetVaultItem(grpc::ServerContext* context, const v1::GetVaultItemRequest* request,
                                        v1::VaultItem* response) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "GetVaultItem", AdminNeed::kViewer, id, &caller); !s.ok()) return s;
    std::optional<v1::VaultItem> item = store_.Get(id);
    if (!item) return Refuse(caller, "GetVaultItem", id, {grpc::StatusCode::NOT_FOUND, "no vault item " + id});
    store_.Audit(caller.identity, "call.show", id, "");
    *response = std::move(*item);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::RequestRelease(grpc::ServerContext* context, const v1::RequestReleaseRequest* request,
                                          v1::VaultItem* response) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "RequestRelease", AdminNeed::kOperator, id, &caller); !s.ok()) return s;
    if (request->reason().empty()) {
      return Refuse(caller, "RequestRelease", id, InvalidArgument("a release request needs a reason"));
    }
    return Changed(caller, "RequestRelease", id, "held", store_.RequestRelease(id, caller.identity, request->reason()),
                   response);
  });
}

grpc::Status AdminService::DecideRelease(grpc::ServerContext* context, const v1::DecideReleaseRequest* request,
                                         v1::VaultItem* response) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "DecideRelease", AdminNeed::kApprover, id, &caller); !s.ok()) return s;
    if (!request->approve() && request->reason().empty()) {
      return Refuse(caller, "DecideRelease", id, InvalidArgument("a denial needs a reason"));
    }
    ItemStore::Change decided =
        store_.DecideRelease(id, caller.identity, request->approve(), request->reason(), two_person_rule_);
    if (decided.refusal == ItemStore::Refusal::kNone && request->approve()) {
      decided = Deliver(decided.item, caller.identity);
    }
    return Changed(caller, "DecideRelease", id, "release_requested", std::move(decided), response);
  });
}

grpc::Status AdminService::Redeliver(grpc::ServerContext* context, const v1::RedeliverRequest* request,
                                     v1::VaultItem* response) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "Redeliver", AdminNeed::kApprover, id, &caller); !s.ok()) return s;
    std::optional<v1::VaultItem> item = store_.Get(id);
    if (!item) return Refuse(caller, "Redeliver", id, {grpc::StatusCode::NOT_FOUND, "no vault item " + id});
    if (item->state() != "released") {
      return Changed(caller, "Redeliver", id, "released", {ItemStore::Refusal::kWrongState, *item}, response);
    }
    if (!item->release().delivered_at().empty()) {
      return Refuse(caller, "Redeliver", id,
                    {grpc::StatusCode::FAILED_PRECONDITION,
                     "item " + id + " was delivered at " + item->release().delivered_at() + ": " +
                         item->release().delivery()});
    }
    return Changed(caller, "Redeliver", id, "released", Deliver(*item, caller.identity), response);
  });
}

grpc::Status AdminService::DownloadOriginal(grpc::ServerContext* context, const v1::DownloadOriginalRequest* request,
                                            grpc::ServerWriter<v1::DownloadOriginalResponse>* writer) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "DownloadOriginal", AdminNeed::kApprover, id, &caller); !s.ok()) {
      return s;
    }
    if (request->reason().empty()) {
      return Refuse(caller, "DownloadOriginal", id, InvalidArgument("a download needs a reason"));
    }
    std::optional<std::string> original = store_.ReadOriginal(id);
    if (!original) {
      std::optional<v1::VaultItem> item = store_.Get(id);
      return Refuse(caller, "DownloadOriginal", id,
                    {grpc::StatusCode::NOT_FOUND,
                     item ? "item " + id + " has no original in the vault (state \"" + item->state() + "\")"
                          : "no vault item " + id});
    }
    // Audited before a byte leaves.
    store_.Audit(caller.identity, "call.download", id,
                 "reason: " + request->reason() + "; " + std::to_string(original->size()) + " bytes");
    for (size_t offset = 0; offset < original->size(); offset += kChunkBytes) {
      v1::DownloadOriginalResponse chunk;
      chunk.set_chunk(original->substr(offset, kChunkBytes));
      if (!writer->Write(chunk)) return ClientGone();
    }
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::DeleteVaultItem(grpc::ServerContext* context, const v1::DeleteVaultItemRequest* request,
                                           v1::VaultItem* response) {
  return Guarded([&] {
    AdminCaller caller;
    const std::string& id = request->id();
    if (grpc::Status s = Authorize(*context, "DeleteVaultItem", AdminNeed::kOperator, id, &caller); !s.ok()) {
      return s;
    }
    return Changed(caller, "DeleteVaultItem", id, "held, release_requested or released",
                   store_.Delete(id, caller.identity, request->reason()), response);
  });
}

grpc::Status AdminService::GetStatistics(grpc::ServerContext* context, const v1::GetStatisticsRequest* request,
                                         v1::GetStatisticsResponse* response) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "GetStatistics", AdminNeed::kViewer, "", &caller); !s.ok()) return s;
    std::string from = request->received_from(), to = request->received_to();
    if (grpc::Status s = NormalizeRange(&from, &to); !s.ok()) return s;
    store_.Audit(caller.identity, "call.stats", "", "from=" + from + " to=" + to);
    for (v1::DailyCount& count : store_.Statistics(from, to)) {
      *response->add_counts() = std::move(count);
    }
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::ExportLog(grpc::ServerContext* context, const v1::ExportLogRequest* request,
                                     grpc::ServerWriter<v1::ExportLogResponse>* writer) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "ExportLog", AdminNeed::kViewer, "", &caller); !s.ok()) return s;
    const bool audit = request->log() == v1::ExportLogRequest::AUDIT;
    std::string from = request->from(), to = request->to();
    if (grpc::Status s = NormalizeRange(&from, &to); !s.ok()) return s;
    store_.Audit(caller.identity, "call.export", "", std::string(audit ? "audit" : "items") + " from=" + from + " to=" + to);
    CsvWriter csv(writer);
    if (audit) {
      if (!csv.Add({"seq", "at", "actor", "action", "item_id", "detail", "prev_hash", "hash"})) return ClientGone();
      uint64_t after = 0;
      for (;;) {
        std::vector<v1::AuditEntry> page = store_.ReadAudit(after, kPageSize, "");
        for (const v1::AuditEntry& e : page) {
          after = e.seq();
          // RFC 3339 UTC times compare as strings.
          if (e.at() < from || (!to.empty() && e.at() >= to)) continue;
          if (!csv.Add({std::to_string(e.seq()), e.at(), e.actor(), e.action(), e.item_id(), e.detail(),
                        e.prev_hash(), e.hash()})) {
            return ClientGone();
          }
        }
        if (page.size() < kPageSize) break;
      }
    } else {
      if (!csv.Add({"id", "received_at", "kind", "name", "detected_type", "sha256", "size", "outcome",
                    "finding_codes", "state", "sender", "recipients", "subject"})) {
        return ClientGone();
      }
      VaultQuery query;
      query.received_from = from;
      query.received_to = to;
      query.limit = kPageSize;
      for (;;) {
        std::vector<v1::VaultItem> page = store_.Search(query);
        for (const v1::VaultItem& i : page) {
          const v1::ItemSummary& s = i.summary();
          if (!csv.Add({i.id(), i.received_at(), s.kind(), i.name(), i.detected_type(), i.sha256(),
                        std::to_string(i.size()), i.outcome(), SpaceSeparated(i.finding_codes()), i.state(), s.sender(),
                        SpaceSeparated(s.recipients()), s.subject()})) {
            return ClientGone();
          }
        }
        if (page.size() < kPageSize) break;
        query.before_id = page.back().id();
      }
    }
    return csv.Flush() ? grpc::Status::OK : ClientGone();
  });
}

grpc::Status AdminService::ListAudit(grpc::ServerContext* context, const v1::ListAuditRequest* request,
                                     v1::ListAuditResponse* response) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "ListAudit", AdminNeed::kViewer, request->item_id(), &caller); !s.ok()) {
      return s;
    }
    store_.Audit(caller.identity, "call.audit_list", request->item_id(),
                 "after=" + std::to_string(request->after_seq()));
    const size_t limit = request->limit() == 0 ? 100 : std::min<size_t>(request->limit(), kPageSize);
    for (v1::AuditEntry& e : store_.ReadAudit(request->after_seq(), limit, request->item_id())) {
      *response->add_entries() = std::move(e);
    }
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::VerifyAudit(grpc::ServerContext* context, const v1::VerifyAuditRequest*,
                                       v1::AuditVerification* response) {
  return Guarded([&] {
    AdminCaller caller;
    if (grpc::Status s = Authorize(*context, "VerifyAudit", AdminNeed::kViewer, "", &caller); !s.ok()) return s;
    *response = store_.VerifyAudit();
    store_.Audit(caller.identity, "call.audit_verify", "",
                 response->ok() ? "ok, " + std::to_string(response->entries()) + " entries"
                                : "failed at seq " + std::to_string(response->first_bad_seq()) + ": " +
                                      response->problem());
    return grpc::Status::OK;
  });
}

std::vector<std::string> OperatorWarnings(const v1::worker::EngineInfo& engine,
                                          const v1::worker::WorkerHello& workers) {
  std::vector<std::string> warnings;
  for (const std::string& missing : workers.missing()) {
    warnings.push_back("workers run WITHOUT " + missing);
  }
  for (const std::string& missing : engine.missing()) {
    warnings.push_back("the scanner runs WITHOUT " + missing);
  }
  if (engine.test_signatures_only()) {
    warnings.push_back("ClamAV runs on TEST SIGNATURES ONLY (" + engine.directory() +
                       "): real malware will NOT be detected; install the official database");
  }
  if (!engine.error().empty()) {
    warnings.push_back("the last signature reload failed: " + engine.error());
  }
  return warnings;
}

grpc::Status StatusService::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                                      v1::DaemonStatus* response) {
  v1::worker::EngineInfo engine = scanner_.engine();
  response->set_version(kMugaiVersion);
  v1::SignatureStatus* signatures = response->mutable_signatures();
  signatures->set_directory(engine.directory());
  signatures->set_signature_count(engine.signature_count());
  signatures->set_test_signatures_only(engine.test_signatures_only());
  response->set_workers(workers_.size());
  v1::worker::WorkerHello hello = workers_.protections();
  for (const std::string& p : hello.protections()) response->add_protections(p);
  for (const std::string& p : engine.protections()) response->add_scanner_protections(p);
  for (std::string& w : OperatorWarnings(engine, hello)) response->add_warnings(std::move(w));
  return grpc::Status::OK;
}

}  // namespace mugai

// The gRPC services of mugaid. Each is a thin adapter: it moves bytes and
// messages between the wire and the pipeline or the store, and owns no
// policy of its own.
#pragma once

#include <memory>

#include "mugai/v1/admin.grpc.pb.h"
#include "mugai/v1/exchange.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"
#include "sanitizers/pipeline/file_sanitizer.h"
#include "sanitizers/pipeline/mail_sanitizer.h"
#include "sanitizers/scan/scanner_client.h"
#include "service/config/config.h"
#include "service/metrics/metrics.h"
#include "service/daemon/admin_access.h"
#include "service/daemon/caller_identity.h"
#include "service/release/release_delivery.h"
#include "service/store/item_store.h"

namespace mugai {

// Ingress: SanitizeFile and SanitizeMessage.
class SanitizerService final : public v1::Sanitizer::Service {
 public:
  SanitizerService(const FileSanitizer& files, const MailSanitizer& mail, ItemStore& store, Metrics& metrics)
      : files_(files), mail_(mail), store_(store), metrics_(metrics) {}

  grpc::Status SanitizeFile(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SanitizeFileResponse, v1::SanitizeFileRequest>* stream) override;
  grpc::Status SanitizeMessage(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SanitizeMessageResponse, v1::SanitizeMessageRequest>* stream) override;

 private:
  const FileSanitizer& files_;
  const MailSanitizer& mail_;
  ItemStore& store_;
  Metrics& metrics_;
};

// Ingress: SubmitFile, from the caller `identities` finds (the sender) to
// an LGWAN-side identity's inbox. The file is sanitized as by SanitizeFile;
// only a delivered item's derivatives reach the inbox.
class ExchangeService final : public v1::Exchange::Service {
 public:
  ExchangeService(const FileSanitizer& files, ItemStore& store, Metrics& metrics, const CallerIdentities& identities)
      : files_(files), store_(store), metrics_(metrics), identities_(identities) {}

  grpc::Status SubmitFile(grpc::ServerContext* context, grpc::ServerReader<v1::SubmitFileRequest>* reader,
                          v1::SubmitFileResponse* response) override;

 private:
  const FileSanitizer& files_;
  ItemStore& store_;
  Metrics& metrics_;
  const CallerIdentities& identities_;
};

// Egress: the caller's own inbox, and nothing else. Every call names an
// inbox by the caller's identity (`identities`), never by a request field;
// an entry of another inbox is NOT_FOUND, as one that does not exist.
class InboxService final : public v1::Inbox::Service {
 public:
  InboxService(ItemStore& store, const CallerIdentities& identities) : store_(store), identities_(identities) {}

  grpc::Status ListInbox(grpc::ServerContext* context, const v1::ListInboxRequest* request,
                         v1::ListInboxResponse* response) override;
  grpc::Status FetchDerivative(grpc::ServerContext* context, const v1::FetchDerivativeRequest* request,
                               grpc::ServerWriter<v1::FetchDerivativeResponse>* writer) override;
  grpc::Status Acknowledge(grpc::ServerContext* context, const v1::AcknowledgeRequest* request,
                           v1::AcknowledgeResponse* response) override;

 private:
  // OK with *recipient the caller's identity, or UNAUTHENTICATED.
  grpc::Status Recipient(const grpc::ServerContext& context, std::string* recipient) const;
  // Whether an entry the store gave may leave: a delivered item's
  // derivative, or an original whose release was approved. The store only
  // makes such entries; this check keeps a store fault from leaking an
  // original or a quarantined item.
  bool MayLeave(const v1::InboxEntry& entry);

  ItemStore& store_;
  const CallerIdentities& identities_;
};

// Admin listener: the vault of originals, its review and approved release,
// statistics, the log and the audit trail. Every call is made by an
// identity that AdminAccess found and whose roles allow it; a refused call
// is audited "call.refused", a read "call.<what>", and a state change by
// the store together with the change.
class AdminService final : public v1::Admin::Service {
 public:
  // `delivery` is null when no delivery path is configured: released
  // originals can then only be downloaded.
  AdminService(ItemStore& store, const AdminConfig& config, const AdminAccess& access, ReleaseDelivery* delivery)
      : store_(store), two_person_rule_(config.two_person_rule), access_(access), delivery_(delivery) {}

  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*, v1::WhoAmIResponse* response) override;
  grpc::Status SearchVault(grpc::ServerContext* context, const v1::SearchVaultRequest* request,
                           v1::SearchVaultResponse* response) override;
  grpc::Status GetVaultItem(grpc::ServerContext* context, const v1::GetVaultItemRequest* request,
                            v1::VaultItem* response) override;
  grpc::Status RequestRelease(grpc::ServerContext* context, const v1::RequestReleaseRequest* request,
                              v1::VaultItem* response) override;
  grpc::Status DecideRelease(grpc::ServerContext* context, const v1::DecideReleaseRequest* request,
                             v1::VaultItem* response) override;
  grpc::Status Redeliver(grpc::ServerContext* context, const v1::RedeliverRequest* request,
                         v1::VaultItem* response) override;
  grpc::Status DownloadOriginal(grpc::ServerContext* context, const v1::DownloadOriginalRequest* request,
                                grpc::ServerWriter<v1::DownloadOriginalResponse>* writer) override;
  grpc::Status DeleteVaultItem(grpc::ServerContext* context, const v1::DeleteVaultItemRequest* request,
                               v1::VaultItem* response) override;
  grpc::Status GetStatistics(grpc::ServerContext* context, const v1::GetStatisticsRequest* request,
                             v1::GetStatisticsResponse* response) override;
  grpc::Status ExportLog(grpc::ServerContext* context, const v1::ExportLogRequest* request,
                         grpc::ServerWriter<v1::ExportLogResponse>* writer) override;
  grpc::Status ListAudit(grpc::ServerContext* context, const v1::ListAuditRequest* request,
                         v1::ListAuditResponse* response) override;
  grpc::Status VerifyAudit(grpc::ServerContext* context, const v1::VerifyAuditRequest*,
                           v1::AuditVerification* response) override;

 private:
  // OK with `caller` set when the caller may make the call `rpc` (about
  // `item_id`, if any); else the refusal, audited.
  grpc::Status Authorize(const grpc::ServerContext& context, std::string_view rpc, AdminNeed need,
                         std::string_view item_id, AdminCaller* caller);
  // Audits `status` as a refusal of `rpc` and returns it.
  grpc::Status Refuse(const AdminCaller& caller, std::string_view rpc, std::string_view item_id, grpc::Status status);
  // The store's answer to a state change as the call's status; `from` names
  // the states the change starts from.
  grpc::Status Changed(const AdminCaller& caller, std::string_view rpc, std::string_view item_id,
                       std::string_view from, ItemStore::Change change, v1::VaultItem* response);
  // Hands a released item to its delivery path and records what happened:
  // a submitted file's original to its recipient's inbox, a mail's to SMTP.
  ItemStore::Change Deliver(const v1::VaultItem& item, std::string_view actor);
  ReleaseDelivery::Result HandOver(const v1::VaultItem& item);

  ItemStore& store_;
  const bool two_person_rule_;
  const AdminAccess& access_;
  ReleaseDelivery* const delivery_;
};

// Every listener: what protections and signatures are in force.
class StatusService final : public v1::Status::Service {
 public:
  StatusService(const ScannerClient& scanner, const WorkerPool& workers)
      : scanner_(scanner), workers_(workers) {}

  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::DaemonStatus* response) override;

 private:
  const ScannerClient& scanner_;
  const WorkerPool& workers_;
};

// The warnings an operator must see, at startup and in GetStatus.
std::vector<std::string> OperatorWarnings(const v1::worker::EngineInfo& engine,
                                          const v1::worker::WorkerHello& workers);

}  // namespace mugai

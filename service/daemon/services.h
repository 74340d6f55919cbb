// The gRPC services of mugaid. Each is a thin adapter: it moves bytes and
// messages between the wire and the pipeline or the store, and owns no
// policy of its own.
#pragma once

#include <memory>

#include "mugai/v1/admin.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"
#include "sanitizers/pipeline/file_sanitizer.h"
#include "sanitizers/pipeline/mail_sanitizer.h"
#include "sanitizers/scan/scanner_client.h"
#include "service/store/item_store.h"

namespace mugai {

// Ingress: SanitizeFile and SanitizeMessage.
class SanitizerService final : public v1::Sanitizer::Service {
 public:
  SanitizerService(const FileSanitizer& files, const MailSanitizer& mail, ItemStore& store)
      : files_(files), mail_(mail), store_(store) {}

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
};

// Admin listener: the quarantine.
class AdminService final : public v1::Admin::Service {
 public:
  explicit AdminService(ItemStore& store) : store_(store) {}

  grpc::Status ListQuarantine(grpc::ServerContext*, const v1::ListQuarantineRequest* request,
                              v1::ListQuarantineResponse* response) override;
  grpc::Status GetQuarantineItem(grpc::ServerContext*, const v1::GetQuarantineItemRequest* request,
                                 v1::QuarantineItem* response) override;
  grpc::Status DeleteQuarantineItem(grpc::ServerContext*,
                                    const v1::DeleteQuarantineItemRequest* request,
                                    v1::DeleteQuarantineItemResponse* response) override;

 private:
  ItemStore& store_;
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

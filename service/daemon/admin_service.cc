#include "service/daemon/services.h"

#include "mugai/version.h"

namespace mugai {
namespace {

template <typename Fn>
grpc::Status Guarded(Fn fn) {
  try {
    return fn();
  } catch (const StoreError& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  }
}

}  // namespace

grpc::Status AdminService::ListQuarantine(grpc::ServerContext*,
                                          const v1::ListQuarantineRequest* request,
                                          v1::ListQuarantineResponse* response) {
  return Guarded([&] {
    for (v1::QuarantineItem& item : store_.ListQuarantined(request->limit(), request->before_id())) {
      *response->add_items() = std::move(item);
    }
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::GetQuarantineItem(grpc::ServerContext*,
                                             const v1::GetQuarantineItemRequest* request,
                                             v1::QuarantineItem* response) {
  return Guarded([&] {
    std::optional<v1::QuarantineItem> item = store_.GetQuarantined(request->id());
    if (!item) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no quarantined item " + request->id());
    *response = std::move(*item);
    return grpc::Status::OK;
  });
}

grpc::Status AdminService::DeleteQuarantineItem(grpc::ServerContext*,
                                                const v1::DeleteQuarantineItemRequest* request,
                                                v1::DeleteQuarantineItemResponse*) {
  return Guarded([&] {
    if (!store_.DeleteQuarantined(request->id())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no quarantined item " + request->id());
    }
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

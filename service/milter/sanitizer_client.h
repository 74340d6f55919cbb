// mugai-milter's side of SanitizeMessage: one call per message, on one
// shared channel (gRPC multiplexes concurrent calls over it).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/sanitize.grpc.pb.h"
#include "service/config/config.h"

namespace mugai {

struct SanitizeAnswer {
  // Set when mugaid answered; otherwise `error` says why not (unreachable,
  // deadline, a broken stream), and the MTA must try again later.
  std::optional<v1::Report> report;
  std::string message;  // the sanitized message, when delivered
  std::string error;
};

class SanitizerClient {
 public:
  // Plaintext to a unix socket or loopback; TLS when the config names a CA.
  // Throws std::runtime_error when a TLS file cannot be read.
  explicit SanitizerClient(const MilterConfig& config);

  SanitizeAnswer Sanitize(std::string_view message, std::string_view sender, const std::vector<std::string>& recipients,
                          std::chrono::seconds timeout) const;

  // True when mugaid answers its status RPC within `timeout`.
  bool Reachable(std::chrono::seconds timeout, std::string* error) const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Sanitizer::Stub> stub_;
};

}  // namespace mugai

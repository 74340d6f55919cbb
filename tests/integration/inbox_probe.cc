// mugai-inbox-probe: a test-only client of the egress listener's Inbox
// service that makes one raw call with whatever id it is given (the CLI
// only acknowledges what it fetched), and prints exactly what came back:
// the status code's name, and every message as JSON (chunks as their
// length and the file the bytes went to).
//
//   mugai-inbox-probe ADDR [--tls-ca F --tls-cert F --tls-key F] [--token T]
//                     list | fetch ID OUT | ack ID
//
// Exit: 0 when the call returned OK, 3 otherwise (the code on stderr).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "mugai/v1/exchange.grpc.pb.h"

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

int Finish(const grpc::Status& status) {
  static const char* const kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                       "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                       "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int code = status.error_code();
  std::cerr << (code >= 0 && code <= 16 ? kNames[code] : "?") << ": " << status.error_message() << "\n";
  return status.ok() ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << "usage: mugai-inbox-probe ADDR [--tls-ca F --tls-cert F --tls-key F] [--token T] "
                 "list | fetch ID OUT | ack ID\n";
    return 2;
  }
  const std::string address = args[0];
  std::string ca, cert, key, token;
  size_t i = 1;
  for (; i + 1 < args.size() && args[i].starts_with("--"); i += 2) {
    if (args[i] == "--tls-ca") ca = ReadFile(args[i + 1]);
    if (args[i] == "--tls-cert") cert = ReadFile(args[i + 1]);
    if (args[i] == "--tls-key") key = ReadFile(args[i + 1]);
    if (args[i] == "--token") token = args[i + 1];
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!ca.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ca;
    tls.pem_private_key = key;
    tls.pem_cert_chain = cert;
    credentials = grpc::SslCredentials(tls);
  }
  auto stub = mugai::v1::Inbox::NewStub(grpc::CreateChannel(address, credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  const std::string command = i < args.size() ? args[i] : "";

  if (command == "list" && i + 1 == args.size()) {
    mugai::v1::ListInboxRequest request;
    request.set_limit(1000);
    mugai::v1::ListInboxResponse response;
    grpc::Status status = stub->ListInbox(&context, request, &response);
    std::cout << Json(response) << "\n";
    return Finish(status);
  }
  if (command == "fetch" && i + 3 == args.size()) {
    mugai::v1::FetchDerivativeRequest request;
    request.set_id(args[i + 1]);
    std::ofstream out(args[i + 2], std::ios::binary);
    auto reader = stub->FetchDerivative(&context, request);
    mugai::v1::FetchDerivativeResponse response;
    while (reader->Read(&response)) {
      if (response.has_chunk()) {
        out << response.chunk();
        std::cout << "{\"chunk\":" << response.chunk().size() << "}\n";
      } else {
        std::cout << Json(response) << "\n";
      }
    }
    return Finish(reader->Finish());
  }
  if (command == "ack" && i + 2 == args.size()) {
    mugai::v1::AcknowledgeRequest request;
    request.set_id(args[i + 1]);
    mugai::v1::AcknowledgeResponse response;
    return Finish(stub->Acknowledge(&context, request, &response));
  }
  std::cerr << "mugai-inbox-probe: unknown command\n";
  return 2;
}

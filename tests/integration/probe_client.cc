// mugai-probe: a test-only gRPC client that does what the real CLI never
// would: names with separators, control characters or no bytes at all,
// lying size headers, disconnecting mid-upload; and the standard health and
// reflection calls every listener must answer.
//
//   mugai-probe health ADDR
//   mugai-probe reflection ADDR
//   mugai-probe upload ADDR NAME_HEX PATH [--announce N] [--disconnect-after N]
//                                          [--second-header]
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"

namespace {

int Health(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, {}, &response);
  if (!status.ok()) {
    std::cerr << status.error_message() << "\n";
    return 1;
  }
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int Reflection(const std::string& address) {
  namespace refl = grpc::reflection::v1alpha;
  auto stub = refl::ServerReflection::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  refl::ServerReflectionRequest request;
  request.set_list_services("");
  stream->Write(request);
  stream->WritesDone();
  refl::ServerReflectionResponse response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) {
      std::cout << service.name() << "\n";
    }
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) std::cerr << status.error_message() << "\n";
  return status.ok() ? 0 : 1;
}

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

int Upload(int argc, char** argv) {
  const std::string address = argv[2];
  const std::string name = FromHex(argv[3]);
  std::ifstream in(argv[4], std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  const std::string bytes = content.str();
  uint64_t announce = bytes.size();
  long disconnect_after = -1;
  bool second_header = false;
  for (int i = 5; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--announce" && i + 1 < argc) announce = std::stoull(argv[++i]);
    if (flag == "--disconnect-after" && i + 1 < argc) disconnect_after = std::stol(argv[++i]);
    if (flag == "--second-header") second_header = true;
  }
  auto stub = mugai::v1::Sanitizer::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->SanitizeFile(&context);
  mugai::v1::SanitizeFileRequest request;
  request.mutable_header()->set_name(name);
  request.mutable_header()->set_size(announce);
  stream->Write(request);
  size_t limit = disconnect_after >= 0 ? static_cast<size_t>(disconnect_after) : bytes.size();
  if (limit > 0) {
    mugai::v1::SanitizeFileRequest chunk;
    chunk.set_chunk(bytes.substr(0, limit));
    stream->Write(chunk);
  }
  if (second_header) stream->Write(request);
  if (disconnect_after >= 0) {
    // Give the bytes time to reach the server, then vanish.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    context.TryCancel();
    std::cout << "disconnected\n";
    return 0;
  }
  stream->WritesDone();
  mugai::v1::SanitizeFileResponse response;
  mugai::v1::Report report;
  while (stream->Read(&response)) {
    if (response.has_report()) report = response.report();
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) {
    std::cerr << "status " << status.error_code() << ": " << status.error_message() << "\n";
    return 1;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(report, &json, options);
  std::cout << json << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "health" && argc == 3) return Health(argv[2]);
  if (command == "reflection" && argc == 3) return Reflection(argv[2]);
  if (command == "upload" && argc >= 5) return Upload(argc, argv);
  std::cerr << "usage: mugai-probe health ADDR | reflection ADDR | upload ADDR NAME_HEX PATH "
               "[--announce N] [--disconnect-after N]\n";
  return 1;
}

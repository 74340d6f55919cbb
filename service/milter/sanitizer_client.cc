#include "service/milter/sanitizer_client.h"

#include <stdexcept>

#include "mugai/v1/admin.grpc.pb.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

std::string ReadPem(const std::string& path) { return path.empty() ? std::string() : ReadConfiguredFile(path); }

std::shared_ptr<grpc::ChannelCredentials> Credentials(const MilterConfig& config) {
  if (config.tls_ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadPem(config.tls_ca_file);
  tls.pem_cert_chain = ReadPem(config.tls_cert_file);
  tls.pem_private_key = ReadPem(config.tls_key_file);
  return grpc::SslCredentials(tls);
}

std::chrono::system_clock::time_point After(std::chrono::seconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

}  // namespace

SanitizerClient::SanitizerClient(const MilterConfig& config) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  channel_ = grpc::CreateCustomChannel(config.server, Credentials(config), args);
  stub_ = v1::Sanitizer::NewStub(channel_);
}

SanitizeAnswer SanitizerClient::Sanitize(std::string_view message, std::string_view sender,
                                         const std::vector<std::string>& recipients,
                                         std::chrono::seconds timeout) const {
  grpc::ClientContext context;
  context.set_deadline(After(timeout));
  auto stream = stub_->SanitizeMessage(&context);
  v1::SanitizeMessageRequest request;
  v1::MessageHeader* header = request.mutable_header();
  header->set_size(message.size());
  header->set_envelope_sender(std::string(sender));
  for (const std::string& r : recipients) header->add_envelope_recipients(r);
  bool writing = stream->Write(request);
  for (size_t offset = 0; writing && offset < message.size(); offset += kChunkBytes) {
    v1::SanitizeMessageRequest chunk;
    chunk.set_chunk(std::string(message.substr(offset, kChunkBytes)));
    writing = stream->Write(chunk);
  }
  stream->WritesDone();
  SanitizeAnswer answer;
  v1::SanitizeMessageResponse response;
  while (stream->Read(&response)) {
    if (response.has_report()) answer.report = response.report();
    if (response.has_chunk()) answer.message += response.chunk();
  }
  grpc::Status status = stream->Finish();
  if (!status.ok() || !answer.report) {
    answer.report.reset();
    answer.error = status.ok() ? "mugaid sent no report" : status.error_message();
  }
  return answer;
}

bool SanitizerClient::Reachable(std::chrono::seconds timeout, std::string* error) const {
  auto status_stub = v1::Status::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(After(timeout));
  v1::DaemonStatus status;
  grpc::Status result = status_stub->GetStatus(&context, v1::GetStatusRequest(), &status);
  if (!result.ok()) *error = result.error_message();
  return result.ok();
}

}  // namespace mugai

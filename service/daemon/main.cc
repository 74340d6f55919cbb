// mugaid: the Mugai daemon. See DESIGN.md for the processes and listeners.
//
//   mugaid [--config FILE] [--data-dir DIR] [--ingress ADDR] [--egress ADDR]
//          [--admin ADDR] [--signatures DIR]
//
// Plaintext listeners only on unix sockets and loopback; mugaid refuses to
// start with one anywhere else.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <iostream>
#include <thread>

#include "mugai/version.h"
#include "sanitizers/core/log.h"
#include "sanitizers/image/image_encoder.h"
#include "sanitizers/mail/message_writer.h"
#include "service/config/config.h"
#include "service/daemon/services.h"
#include "service/daemon/vault_purger.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

constexpr char kUsage[] =
    "usage: mugaid [--config FILE] [--data-dir DIR] [--ingress ADDR] [--egress ADDR]\n"
    "              [--admin ADDR] [--signatures DIR]\n"
    "ADDR is unix:/path or host:port. Defaults are built in; see samples/mugai.toml.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Config ParseCommandLine(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    static const std::set<std::string> kKnown = {"--config", "--data-dir", "--ingress",
                                                 "--egress", "--admin", "--signatures"};
    if (!kKnown.count(flag)) throw UsageError("unknown option " + flag);
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    flags[flag] = argv[++i];
  }
  Config config = flags.count("--config") ? LoadConfig(flags["--config"]) : Config{};
  if (flags.count("--data-dir")) config.data_dir = flags["--data-dir"];
  if (flags.count("--ingress")) config.ingress = flags["--ingress"];
  if (flags.count("--egress")) config.egress = flags["--egress"];
  if (flags.count("--admin")) config.admin = flags["--admin"];
  if (flags.count("--signatures")) config.signatures = flags["--signatures"];
  return config;
}

std::string BesideSelf(const std::string& configured, const char* program) {
  if (!configured.empty()) return configured;
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / program).string();
}

// True when only this host can reach `address`: a unix socket, or a
// loopback IP literal (127.0.0.0/8, [::1]) or "localhost", with or without
// gRPC's ipv4:/ipv6: scheme, and a port. Everything else is off loopback:
// 0.0.0.0 and [::] (every interface), any other name (127.example.org is a
// name), a list of addresses.
bool IsLocalAddress(const std::string& address) {
  if (address.starts_with("unix:") || address.starts_with("unix-abstract:")) return true;
  std::string_view host_port = address;
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (host_port.starts_with(scheme)) host_port.remove_prefix(scheme.size());
  }
  const size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == host_port.size()) return false;
  const std::string host(host_port.substr(0, colon));
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return ntohl(v4.s_addr) >> 24 == 127;
  in6_addr v6{};
  return host.size() > 2 && host.front() == '[' && host.back() == ']' &&
         inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Fails closed before anything starts: plaintext only where no other host
// can connect (a certificate-less listener on the network would let anyone
// submit, read inboxes or administer), and a TLS table given in part is an
// error, not plaintext.
void CheckListener(const std::string& name, const std::string& address, const ListenerTls& tls) {
  const std::string table = "[listeners." + name + "_tls]";
  if (tls.cert_file.empty() != tls.key_file.empty() || (tls.cert_file.empty() && !tls.client_ca_file.empty())) {
    throw ConfigError(name + " listener " + address + ": " + table +
                      " needs both cert_file and key_file (client_ca_file alone does not make TLS)");
  }
  if (tls.cert_file.empty() && !IsLocalAddress(address)) {
    throw ConfigError(name + " listener " + address +
                      " would be plaintext TCP off loopback, which is refused: give it " + table +
                      " cert_file and key_file, or listen on a unix socket or loopback");
  }
}

// The health listener has no TLS at all, so loopback or a unix socket only.
void CheckHealthListener(const std::string& address) {
  if (!address.empty() && !IsLocalAddress(address)) {
    throw ConfigError("health listener " + address +
                      " is off loopback: it is always plaintext, so give [listeners] health a unix socket or "
                      "loopback address (127.0.0.1:PORT), or leave it empty");
  }
}

// Metrics are plaintext HTTP over TCP: a loopback address and port.
void CheckMetricsListener(const std::string& address) {
  if (!address.empty() && (address.starts_with("unix") || !IsLocalAddress(address))) {
    throw ConfigError("metrics listener " + address +
                      " is not loopback TCP: the endpoint is plaintext HTTP, so give [listeners] metrics as "
                      "127.0.0.1:PORT or [::1]:PORT, or leave it empty");
  }
}

// TLS when the listener has a certificate, with client certificates
// required and verified when it has a client CA; else plaintext (checked
// above to be local).
std::shared_ptr<grpc::ServerCredentials> Credentials(const ListenerTls& tls) {
  if (tls.cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(tls.client_ca_file.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back({ReadConfiguredFile(tls.key_file), ReadConfiguredFile(tls.cert_file)});
  if (!tls.client_ca_file.empty()) options.pem_root_certs = ReadConfiguredFile(tls.client_ca_file);
  return grpc::SslServerCredentials(options);
}

// Who submits on ingress when the listener identifies nobody (no client
// CA, no tokens): the embedded default, a local unix socket.
constexpr char kAnonymousSubmitter[] = "anonymous";

// How the Exchange and Inbox services on listener `name` know their
// callers: its client CA, else its [exchange] tokens file.
CallerIdentities ListenerIdentities(const std::string& name, const ListenerTls& tls, const std::string& tokens_file,
                                    std::string fixed_identity) {
  const std::string setting = "[exchange] " + name + "_tokens_file";
  std::vector<CallerIdentities::Token> tokens;
  if (!tokens_file.empty()) tokens = CallerIdentities::ReadTokensFile(tokens_file, setting);
  return CallerIdentities(name, setting, !tls.client_ca_file.empty(), std::move(tokens), std::move(fixed_identity));
}

// A unix socket path is prepared here: its directory made, a stale socket
// from an earlier run removed.
void PrepareAddress(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) {
    std::filesystem::path path = address.substr(5);
    std::filesystem::create_directories(path.parent_path());
    if (std::filesystem::is_socket(path)) std::filesystem::remove(path);
  }
}

struct Listener {
  std::string name;
  std::string address;
  ListenerTls tls;
  bool health_only = false;  // plaintext by design: grpc.health.v1 and Status
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::unique_ptr<grpc::Server> server;
};

void StartListener(Listener& listener, Metrics& metrics) {
  const std::string& address = listener.address;
  const ListenerTls& tls = listener.tls;
  PrepareAddress(address);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, Credentials(tls), &port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics.RpcTimer());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  for (auto& service : listener.services) builder.RegisterService(service.get());
  listener.server = builder.BuildAndStart();
  if (!listener.server) throw std::runtime_error("cannot listen on " + address + " (" + listener.name + ")");
  const std::string line = listener.name + " listening on " + address;
  if (listener.health_only) {
    LogInfo(line + " (plaintext, health checks only)");
  } else if (tls.cert_file.empty()) {
    LogWarn(line + " in plaintext (no [listeners." + listener.name + "_tls]; allowed on this host only)");
  } else {
    LogInfo(line + (tls.client_ca_file.empty() ? " (TLS)" : " (mutual TLS)"));
  }
}

int Run(int argc, char** argv) {
  SetLogProgram("mugaid");
  Config config;
  try {
    config = ParseCommandLine(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "mugaid: " << e.what() << "\n" << kUsage;
    return 1;
  }
  CheckListener("ingress", config.ingress, config.ingress_tls);
  CheckListener("egress", config.egress, config.egress_tls);
  CheckListener("admin", config.admin, config.admin_tls);
  CheckHealthListener(config.health);
  CheckMetricsListener(config.metrics);

  // Signals are taken by one thread with sigwait; block them everywhere
  // first so that every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  LogInfo(std::string("mugaid ") + kMugaiVersion + " starting, data in " + config.data_dir);
  config.store.data_dir = config.data_dir;
  // Before everything it is told about: the endpoint that reads the
  // watched pools and store is declared after them and goes first.
  Metrics metrics;
  std::unique_ptr<ItemStore> store = OpenItemStore(config.store);
  metrics.WatchVault(*store);
  VaultPurger purger(*store, std::chrono::seconds(config.purge_interval_seconds));
  const AdminAccess access(config.admin_access, config.data_dir, !config.admin_tls.client_ca_file.empty());
  if (!access.default_token_file().empty()) {
    LogInfo(std::string("admin token for \"") + kLocalAdmin + "\" (every role) in " +
            access.default_token_file().string());
  }
  const CallerIdentities submitters = ListenerIdentities("ingress", config.ingress_tls,
                                                         config.exchange.ingress_tokens_file, kAnonymousSubmitter);
  const CallerIdentities recipients =
      ListenerIdentities("egress", config.egress_tls, config.exchange.egress_tokens_file, "");
  LogInfo("ingress callers (Exchange submitters): " + submitters.Describe());
  LogInfo("egress callers (Inbox recipients): " + recipients.Describe());
  LogInfo("admin callers: " + access.identities().Describe());
  std::unique_ptr<ReleaseDelivery> release = MakeReleaseDelivery(config.release);
  if (!release) LogInfo("no [release] smtp_url: released mail originals can only be downloaded");

  ScannerOptions scanner_options;
  scanner_options.executable = BesideSelf(config.scanner_executable, "mugai-scanner");
  scanner_options.signatures_dir =
      config.signatures.empty() ? DefaultSignatureDirectory() : config.signatures;
  scanner_options.threads = config.scanner_threads ? config.scanner_threads : cpus;
  scanner_options.reload_check = std::chrono::seconds(config.signature_check_seconds);
  scanner_options.max_scan_bytes = config.limits.max_file_bytes;
  ScannerClient scanner(scanner_options);
  scanner.Start(Clock::now() + std::chrono::minutes(5));
  v1::worker::EngineInfo engine = scanner.engine();
  LogInfo("ClamAV engine: " + std::to_string(engine.signature_count()) + " signatures from " +
          engine.directory());

  WorkerPoolOptions pool_options;
  pool_options.executable = BesideSelf(config.worker_executable, "mugai-worker");
  pool_options.size = config.workers ? config.workers : cpus;
  pool_options.max_jobs_per_worker = config.worker_max_jobs;
  pool_options.max_job_bytes = config.limits.max_file_bytes + (1u << 20);
  pool_options.record_limits.max_text_bytes = config.limits.max_text_bytes;
  // One job renders at most all of a document's pages, 4 bytes a pixel.
  pool_options.record_limits.max_pixels = config.documents.max_page_pixels;
  pool_options.record_limits.max_pixel_bytes = config.documents.max_total_pixels * 4;
  // One job unpacks at most what is left of an item's archive budget; every
  // refused member is a finding.
  pool_options.record_limits.max_children = config.archives.max_members;
  pool_options.record_limits.max_child_bytes = config.archives.max_expanded_bytes;
  pool_options.record_limits.max_findings = config.archives.max_members + 1'000;
  pool_options.record_limits.max_records = std::max<uint64_t>(pool_options.record_limits.max_records,
                                                              2 * uint64_t{config.archives.max_members} + 1'000);
  pool_options.memory_bytes = config.worker_memory_bytes;
  pool_options.sandbox = config.worker_sandbox;
  pool_options.on_job = [&metrics](const std::string& converter, JobStatus status, std::chrono::nanoseconds took) {
    metrics.ObserveJob("worker", converter, status, took);
  };
  WorkerPool pool(pool_options);
  pool.Start();
  metrics.WatchPool("worker", pool);
  LogInfo(std::to_string(pool.size()) + " workers started (" + pool_options.executable + ")");
  v1::worker::WorkerHello hello = pool.protections();
  for (const std::string& p : hello.protections()) LogInfo("worker sandbox: " + p);
  for (const std::string& p : engine.protections()) LogInfo("scanner sandbox: " + p);
  for (const std::string& warning : OperatorWarnings(engine, hello)) LogWarn("*** " + warning + " ***");

  std::unique_ptr<WorkerPool> office_pool;
  if (config.office_workers > 0) {
    WorkerPoolOptions office_options = pool_options;
    office_options.executable = BesideSelf(config.office_executable, "mugai-office-worker");
    office_options.size = config.office_workers;
    office_options.memory_bytes = config.office_memory_bytes;
    office_options.on_job = [&metrics](const std::string& converter, JobStatus status,
                                       std::chrono::nanoseconds took) {
      metrics.ObserveJob("office", converter, status, took);
    };
    office_pool = std::make_unique<WorkerPool>(office_options);
    office_pool->Start();
    metrics.WatchPool("office", *office_pool);
    LogInfo(std::to_string(office_pool->size()) + " Office workers started (" + office_options.executable + ")");
    const v1::worker::WorkerHello office_hello = office_pool->protections();
    for (const std::string& p : office_hello.protections()) LogInfo("Office worker sandbox: " + p);
  } else {
    LogWarn("no Office workers: Office documents are blocked");
  }

  InitVips();
  InitMessageWriter();
  FileSanitizer sanitizer(scanner, pool, config.limits, config.documents, office_pool.get(), config.archives);
  MailSanitizer mail(sanitizer, scanner, pool, config.mail);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::vector<Listener> listeners(3);
  listeners[0].name = "ingress";
  listeners[0].address = config.ingress;
  listeners[0].tls = config.ingress_tls;
  listeners[0].services.push_back(std::make_unique<SanitizerService>(sanitizer, mail, *store, metrics));
  listeners[0].services.push_back(std::make_unique<ExchangeService>(sanitizer, *store, metrics, submitters));
  listeners[1].name = "egress";
  listeners[1].address = config.egress;
  listeners[1].tls = config.egress_tls;
  listeners[1].services.push_back(std::make_unique<InboxService>(*store, recipients));
  listeners[2].name = "admin";
  listeners[2].address = config.admin;
  listeners[2].tls = config.admin_tls;
  listeners[2].services.push_back(std::make_unique<AdminService>(*store, config.admin_access, access, release.get()));
  if (!config.health.empty()) {
    Listener& health = listeners.emplace_back();
    health.name = "health";
    health.address = config.health;
    health.health_only = true;
  }
  for (Listener& l : listeners) l.services.push_back(std::make_unique<StatusService>(scanner, pool));
  // The health listener last: when it answers, every listener does.
  for (Listener& l : listeners) StartListener(l, metrics);
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;
  if (!config.metrics.empty()) {
    metrics_endpoint = metrics.Serve(config.metrics);
    LogInfo("metrics on http://" + config.metrics + "/metrics");
  }
  LogInfo("ready");

  for (;;) {
    int signo = 0;
    sigwait(&signals, &signo);
    if (signo == SIGHUP) {
      LogInfo("SIGHUP: reloading signatures");
      scanner.Reload();
      continue;
    }
    break;
  }
  LogInfo("shutting down: finishing work in flight (up to " +
          std::to_string(config.shutdown_grace_seconds) + "s)");
  const auto grace = std::chrono::system_clock::now() + std::chrono::seconds(config.shutdown_grace_seconds);
  for (Listener& l : listeners) {
    l.server->GetHealthCheckService()->Shutdown();
  }
  // Shutdown stops accepting calls and waits for those in flight, each of
  // which records its outcome before it answers.
  std::vector<std::thread> stoppers;
  for (Listener& l : listeners) stoppers.emplace_back([&l, grace] { l.server->Shutdown(grace); });
  for (std::thread& t : stoppers) t.join();
  LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace mugai

int main(int argc, char** argv) {
  try {
    return mugai::Run(argc, argv);
  } catch (const std::exception& e) {
    mugai::LogError(std::string("fatal: ") + e.what());
    return 1;
  }
}

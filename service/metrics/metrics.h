// The daemon's Prometheus metrics, served as text on a loopback port of
// their own ([listeners] metrics). Each fact is counted where it becomes
// true, so the figures agree with what clients and the store saw: an item
// when its outcome is durably recorded, an RPC when its status is sent, a
// worker job when it ends. Pool and vault gauges are read at each scrape.
//
// Thread-safe. Pools and the store given to Watch* must outlive this.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/support/server_interceptor.h>

#include "mugai/v1/report.pb.h"
#include "sanitizers/worker/worker_pool.h"
#include "service/store/item_store.h"

namespace prometheus {
class Exposer;
}

namespace mugai {

// The HTTP endpoint of Metrics::Serve; serving while it lives.
class MetricsEndpoint {
 public:
  explicit MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
};

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // An outcome the store recorded for the first time (not a repeated
  // submission): mugai_items_total{kind,outcome} and, once per code in the
  // item's tree, mugai_findings_total{code}.
  void CountRecorded(const v1::Report& report, std::string_view kind);

  // A worker job of `pool` ("worker", "office") that ended:
  // mugai_converter_seconds{pool,converter,status}.
  void ObserveJob(std::string_view pool, std::string_view converter, JobStatus status,
                  std::chrono::nanoseconds took);

  // mugai_worker_pool_{workers,idle,busy} and
  // mugai_worker_replacements_total{pool,cause}, sampled at each scrape.
  void WatchPool(std::string name, const WorkerPool& pool);
  // mugai_vault_{items,originals,sealed_bytes}, sampled at each scrape.
  void WatchVault(ItemStore& store);

  // Times every call of a gRPC server it is installed in:
  // mugai_rpc_seconds{method,code}.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcTimer();

  // The exposition text, as GET /metrics answers it.
  std::string Text() const;

  // Serves GET /metrics in plaintext HTTP on `address` ("127.0.0.1:9464",
  // "[::1]:9464"; the caller keeps it on loopback) until the endpoint is
  // destroyed, which must happen before the watched pools and store go.
  // Throws std::runtime_error when it cannot listen.
  std::unique_ptr<MetricsEndpoint> Serve(const std::string& address);

  class State;  // the registry and the sampled sources (metrics.cc)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mugai

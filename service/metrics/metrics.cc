#include "service/metrics/metrics.h"

#include <mutex>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "sanitizers/core/log.h"

namespace mugai {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// From a millisecond (a text mail) to the longest deadline (ten minutes).
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddGauge(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric& metric = family.metric.emplace_back();
  metric.label = std::move(labels);
  metric.gauge.value = value;
}

}  // namespace

// The registry of counted metrics, plus what is sampled when scraped.
class Metrics::State : public prometheus::Collectable {
 public:
  State()
      : registry_(std::make_shared<prometheus::Registry>()),
        items_(prometheus::BuildCounter()
                   .Name("mugai_items_total")
                   .Help("Items whose outcome was recorded, by kind and outcome")
                   .Register(*registry_)),
        findings_(prometheus::BuildCounter()
                      .Name("mugai_findings_total")
                      .Help("Recorded items with a finding code anywhere in their tree, by code")
                      .Register(*registry_)),
        rpcs_(prometheus::BuildHistogram()
                  .Name("mugai_rpc_seconds")
                  .Help("gRPC calls by method and status code, from arrival to status sent")
                  .Register(*registry_)),
        jobs_(prometheus::BuildHistogram()
                  .Name("mugai_converter_seconds")
                  .Help("Worker jobs by pool, converter and how they ended")
                  .Register(*registry_)) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> families = registry_->Collect();
    std::lock_guard lock(mutex_);
    MetricFamily workers = Family("mugai_worker_pool_workers", "Workers in the pool", MetricType::Gauge);
    MetricFamily idle = Family("mugai_worker_pool_idle", "Workers waiting for a job", MetricType::Gauge);
    MetricFamily busy = Family("mugai_worker_pool_busy", "Workers running a job or starting", MetricType::Gauge);
    MetricFamily replaced = Family("mugai_worker_replacements_total",
                                   "Workers replaced, by cause (recycled, died_idle, or how the job ended)",
                                   MetricType::Counter);
    for (const auto& [name, pool] : pools_) {
      const WorkerPool::Gauges gauges = pool->gauges();
      AddGauge(workers, {{"pool", name}}, pool->size());
      AddGauge(idle, {{"pool", name}}, gauges.idle);
      AddGauge(busy, {{"pool", name}}, pool->size() > gauges.idle ? pool->size() - gauges.idle : 0);
      for (const auto& [cause, count] : gauges.replaced) {
        ClientMetric& metric = replaced.metric.emplace_back();
        metric.label = {{"pool", name}, {"cause", cause}};
        metric.counter.value = static_cast<double>(count);
      }
    }
    for (MetricFamily* family : {&workers, &idle, &busy, &replaced}) families.push_back(std::move(*family));
    if (store_ != nullptr) {
      try {
        const ItemStore::VaultUsage usage = store_->Usage();
        MetricFamily items = Family("mugai_vault_items", "Items whose original the vault keeps", MetricType::Gauge);
        AddGauge(items, {}, static_cast<double>(usage.items));
        MetricFamily originals =
            Family("mugai_vault_originals", "Distinct originals kept, sealed", MetricType::Gauge);
        AddGauge(originals, {}, static_cast<double>(usage.originals));
        MetricFamily bytes =
            Family("mugai_vault_sealed_bytes", "Bytes of sealed originals in the database", MetricType::Gauge);
        AddGauge(bytes, {}, static_cast<double>(usage.sealed_bytes));
        for (MetricFamily* family : {&items, &originals, &bytes}) families.push_back(std::move(*family));
      } catch (const std::exception& e) {
        // A scrape must not fail because the database is away; the gauges
        // are absent from this one and the log says why.
        LogWarn(std::string("metrics: cannot read the vault's size: ") + e.what());
      }
    }
    return families;
  }

  void CountRecorded(const v1::Report& report, std::string_view kind) {
    items_.Add({{"kind", std::string(kind)}, {"outcome", report.outcome()}}).Increment();
    for (const std::string& code : FindingCodesOf(report.item())) findings_.Add({{"code", code}}).Increment();
  }

  void ObserveRpc(std::string method, grpc::StatusCode code, std::chrono::nanoseconds took) {
    rpcs_.Add({{"method", std::move(method)}, {"code", std::to_string(static_cast<int>(code))}}, LatencyBuckets())
        .Observe(Seconds(took));
  }

  void ObserveJob(std::string_view pool, std::string_view converter, JobStatus status,
                  std::chrono::nanoseconds took) {
    jobs_.Add({{"pool", std::string(pool)}, {"converter", std::string(converter)}, {"status", JobStatusName(status)}},
              LatencyBuckets())
        .Observe(Seconds(took));
  }

  void WatchPool(std::string name, const WorkerPool& pool) {
    std::lock_guard lock(mutex_);
    pools_.emplace_back(std::move(name), &pool);
  }

  void WatchVault(ItemStore& store) {
    std::lock_guard lock(mutex_);
    store_ = &store;
  }

 private:
  const std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& items_;
  prometheus::Family<prometheus::Counter>& findings_;
  prometheus::Family<prometheus::Histogram>& rpcs_;
  prometheus::Family<prometheus::Histogram>& jobs_;

  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, const WorkerPool*>> pools_;
  ItemStore* store_ = nullptr;
};

namespace {

// One per call: from its creation (the call arrived) to its status.
class RpcTimerInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcTimerInterceptor(std::shared_ptr<Metrics::State> state, const char* method)
      : state_(std::move(state)), method_(method ? method : "?"), started_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      state_->ObserveRpc(method_, methods->GetSendStatus().error_code(), std::chrono::steady_clock::now() - started_);
    }
    methods->Proceed();
  }

 private:
  const std::shared_ptr<Metrics::State> state_;
  const std::string method_;
  const std::chrono::steady_clock::time_point started_;
};

class RpcTimerFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcTimerFactory(std::shared_ptr<Metrics::State> state) : state_(std::move(state)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    // gRPC takes ownership of the interceptor and deletes it after the call.
    return std::make_unique<RpcTimerInterceptor>(state_, info->method()).release();
  }

 private:
  const std::shared_ptr<Metrics::State> state_;
};

}  // namespace

Metrics::Metrics() : state_(std::make_shared<State>()) {}

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer) : exposer_(std::move(exposer)) {}

MetricsEndpoint::~MetricsEndpoint() = default;

void Metrics::CountRecorded(const v1::Report& report, std::string_view kind) { state_->CountRecorded(report, kind); }

void Metrics::ObserveJob(std::string_view pool, std::string_view converter, JobStatus status,
                         std::chrono::nanoseconds took) {
  state_->ObserveJob(pool, converter, status, took);
}

void Metrics::WatchPool(std::string name, const WorkerPool& pool) { state_->WatchPool(std::move(name), pool); }

void Metrics::WatchVault(ItemStore& store) { state_->WatchVault(store); }

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::RpcTimer() {
  return std::make_unique<RpcTimerFactory>(state_);
}

std::string Metrics::Text() const { return prometheus::TextSerializer().Serialize(state_->Collect()); }

std::unique_ptr<MetricsEndpoint> Metrics::Serve(const std::string& address) {
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One thread: scrapes are rare, and each reads the store once.
    exposer = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics on " + address + ": " + e.what());
  }
  exposer->RegisterCollectable(state_);
  return std::make_unique<MetricsEndpoint>(std::move(exposer));
}

}  // namespace mugai

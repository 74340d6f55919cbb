// What the worker sandbox costs: the same WorkerPool and mugai-worker, once
// with workers that confine themselves (options.sandbox = true, the default)
// and once without (the baseline). Measured, interleaved in rounds so that
// machine noise falls on both sides alike:
//
//   1. per-item latency of a small text job (~2 KB of Japanese UTF-8) run
//      sequentially on warm workers, alternating between the two sides item
//      by item: median, p99, items/s;
//   2. the cost of starting a worker: WorkerPool::Start() with size 1 until
//      its first job has completed (what a recycled or crashed worker costs);
//   3. the cost per item amortised over max_jobs_per_worker jobs:
//      start / max_jobs + per-item latency.
//
// The sandbox's cost per item is the difference of (3) between the pools.
// Timings are reported, never asserted: the program fails only when a job
// does.
//
//   sandbox_bench [--items N] [--starts M] [--rounds R] [--max-jobs J]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "sanitizers/worker/worker_pool.h"

namespace {

using mugai::Clock;
using mugai::JobResult;
using mugai::JobStatus;
using mugai::WorkerPool;
using mugai::WorkerPoolOptions;
using Micros = std::chrono::duration<double, std::micro>;

constexpr auto kJobTimeout = std::chrono::seconds(30);

struct Args {
  int items = 10000;  // per pool, for the latency figures
  int starts = 40;    // per pool, for the start figures
  int rounds = 10;
  unsigned max_jobs = 500;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "sandbox_bench: %s\n"
               "usage: sandbox_bench [--items N] [--starts M] [--rounds R] [--max-jobs J]\n",
               why);
  std::exit(2);
}

Args ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> long {
      if (i + 1 >= argc) Usage("an option needs a value");
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v <= 0 || v > 10'000'000) Usage("values are positive integers");
      return v;
    };
    if (std::strcmp(argv[i], "--items") == 0) {
      args.items = static_cast<int>(value());
    } else if (std::strcmp(argv[i], "--starts") == 0) {
      args.starts = static_cast<int>(value());
    } else if (std::strcmp(argv[i], "--rounds") == 0) {
      args.rounds = static_cast<int>(value());
    } else if (std::strcmp(argv[i], "--max-jobs") == 0) {
      args.max_jobs = static_cast<unsigned>(value());
    } else {
      Usage("unknown argument");
    }
  }
  args.rounds = std::min({args.rounds, args.items, args.starts});
  return args;
}

// About 2 KB of Japanese text, as a short notice or mail body would be.
std::string SampleText() {
  const std::string line =
      "令和六年度の住民税の納税通知書を送付いたします。ご不明な点は税務課までお問い合わせください。\n";
  std::string text;
  for (int i = 0; text.size() < 2048; ++i) text += std::to_string(i) + ". " + line;
  return text;
}

WorkerPoolOptions Options(bool sandbox, unsigned size, unsigned max_jobs) {
  WorkerPoolOptions options;
  options.executable = MUGAI_BIN_DIR "/mugai-worker";
  options.sandbox = sandbox;
  options.size = size;
  options.max_jobs_per_worker = max_jobs;
  return options;
}

// Runs one text job; throws when it does not come back as the text sent.
void RunJob(WorkerPool& pool, const std::string& text, const char* which) {
  mugai::v1::worker::Job job;
  job.set_converter("text");
  job.set_name("notice.txt");
  job.set_content(text);
  job.set_max_output_bytes(1u << 20);
  JobResult result = pool.Run(std::move(job), Clock::now() + kJobTimeout, mugai::kTextRecords);
  if (result.status != JobStatus::kOk) {
    throw std::runtime_error(std::string(which) + " pool: job failed: " + result.detail);
  }
  std::string out;
  for (const auto& record : result.records) {
    if (record.has_text()) out += record.text().utf8();
  }
  if (out.empty()) throw std::runtime_error(std::string(which) + " pool: job returned no text");
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

double Mean(const std::vector<double>& values) {
  return values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) /
                                  static_cast<double>(values.size());
}

struct Side {
  const char* name = "";
  bool sandbox = true;
  std::unique_ptr<WorkerPool> warm;  // for the latency figures, this round
  std::vector<double> latency_us;
  double busy_us = 0;                // sum of the item latencies
  std::vector<double> start_ms;
  std::string confinement = "unknown";  // of a worker, from /proc
};

// Pids of our children (every thread's), from /proc.
std::set<int> ChildPids() {
  std::set<int> pids;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "children");
    for (int pid; in >> pid;) pids.insert(pid);
  }
  return pids;
}

// "Seccomp: 2, NoNewPrivs: 1" for a process, as /proc/PID/status says.
std::string Confinement(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.starts_with("Seccomp:") || line.starts_with("NoNewPrivs:")) {
      size_t value = line.find_first_not_of(" \t", line.find(':') + 1);
      if (!out.empty()) out += ", ";
      out += line.substr(0, line.find(':')) + " " + line.substr(value);
    }
  }
  return out.empty() ? "unknown" : out;
}

// The count for round `round` of `rounds` when `total` is spread over them.
int Share(int total, int round, int rounds) {
  return total / rounds + (round < total % rounds ? 1 : 0);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  const std::string text = SampleText();
  Side sides[2];
  sides[0].name = "sandboxed";
  sides[0].sandbox = true;
  sides[1].name = "unsandboxed";
  sides[1].sandbox = false;
  try {
    for (int round = 0; round < args.rounds; ++round) {
      // Fresh warm pools every round: how fast one process happens to be
      // (its CPU, its memory layout) persists for its life, so averaging
      // over many of them keeps that luck off the comparison. Two workers
      // each, taking turns; never recycled here, so only the job is timed.
      for (Side& side : sides) {
        const std::set<int> before = ChildPids();
        side.warm = std::make_unique<WorkerPool>(Options(side.sandbox, 2, 1u << 30));
        side.warm->Start();
        for (int i = 0; i < 10; ++i) RunJob(*side.warm, text, side.name);  // warm-up
        if (round == 0) {  // say what is being compared
          for (int pid : ChildPids()) {
            if (before.count(pid) == 0) side.confinement = Confinement(pid);
          }
        }
      }
      // Item by item, alternating which side goes first, so neither always
      // follows the other and slow phases of the machine hit both alike.
      const int items = Share(args.items, round, args.rounds);
      for (int i = 0; i < items; ++i) {
        for (int k = 0; k < 2; ++k) {
          Side& side = sides[(i + k) % 2];
          const auto t0 = Clock::now();
          RunJob(*side.warm, text, side.name);
          const double us = Micros(Clock::now() - t0).count();
          side.latency_us.push_back(us);
          side.busy_us += us;
        }
      }
      for (int k = 0; k < 2; ++k) {
        Side& side = sides[(round + k + 1) % 2];
        const int starts = Share(args.starts, round, args.rounds);
        for (int i = 0; i < starts; ++i) {
          WorkerPool pool(Options(side.sandbox, 1, args.max_jobs));
          const auto t0 = Clock::now();
          pool.Start();
          RunJob(pool, text, side.name);
          side.start_ms.push_back(Micros(Clock::now() - t0).count() / 1000.0);
        }  // the pool's destructor kills and reaps its worker, untimed
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sandbox_bench: %s\n", e.what());
    return 1;
  }

  struct Figures {
    double median_us, p99_us, mean_us, items_per_s, start_median_ms, start_p90_ms, amortised_us;
  };
  Figures f[2];
  for (int s = 0; s < 2; ++s) {
    const Side& side = sides[s];
    f[s].median_us = Percentile(side.latency_us, 0.5);
    f[s].p99_us = Percentile(side.latency_us, 0.99);
    f[s].mean_us = Mean(side.latency_us);
    f[s].items_per_s = static_cast<double>(side.latency_us.size()) / (side.busy_us / 1e6);
    f[s].start_median_ms = Percentile(side.start_ms, 0.5);
    f[s].start_p90_ms = Percentile(side.start_ms, 0.9);
    f[s].amortised_us = f[s].start_median_ms * 1000.0 / args.max_jobs + f[s].median_us;
  }

  std::printf("sandbox bench: %zu B Japanese text job, %d items and %d starts per side, "
              "%d interleaved rounds, max_jobs_per_worker %u\n",
              text.size(), args.items, args.starts, args.rounds, args.max_jobs);
  for (const Side& side : sides) std::printf("%s workers: %s\n", side.name, side.confinement.c_str());
  if (sides[0].confinement == sides[1].confinement) {
    std::printf("NOTE: both pools' workers look alike: the sandbox may not be in force\n");
  }
  std::printf("\n");
  std::printf("%-26s %12s %12s %10s\n", "", sides[0].name, sides[1].name, "ratio");
  auto row = [&](const char* label, double a, double b, const char* format) {
    char sa[32], sb[32];
    std::snprintf(sa, sizeof sa, format, a);
    std::snprintf(sb, sizeof sb, format, b);
    std::printf("%-26s %12s %12s %9.2fx\n", label, sa, sb, b != 0 ? a / b : 0.0);
  };
  row("item latency median (us)", f[0].median_us, f[1].median_us, "%.1f");
  row("item latency p99 (us)", f[0].p99_us, f[1].p99_us, "%.1f");
  row("item latency mean (us)", f[0].mean_us, f[1].mean_us, "%.1f");
  row("items/s (sequential)", f[0].items_per_s, f[1].items_per_s, "%.0f");
  row("worker start median (ms)", f[0].start_median_ms, f[1].start_median_ms, "%.2f");
  row("worker start p90 (ms)", f[0].start_p90_ms, f[1].start_p90_ms, "%.2f");
  char label[64];
  std::snprintf(label, sizeof label, "amortised/item @%u (us)", args.max_jobs);
  row(label, f[0].amortised_us, f[1].amortised_us, "%.1f");

  const double per_item_delta_ms = (f[0].median_us - f[1].median_us) / 1000.0;
  const double start_delta_ms = f[0].start_median_ms - f[1].start_median_ms;
  const double cost_ms = start_delta_ms / args.max_jobs + per_item_delta_ms;
  std::printf("\nper-item delta %.3f ms + start delta %.3f ms / %u jobs\n", per_item_delta_ms,
              start_delta_ms, args.max_jobs);
  std::printf("sandbox cost per item: %.3f ms (target < 2 ms)\n", cost_ms);
  return 0;
}

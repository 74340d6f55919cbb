#include "sanitizers/scan/scanner_client.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "sanitizers/scan/official_database.h"
#include "tests/unit/scan/scan_test_util.h"

namespace mugai {
namespace {

using namespace std::chrono_literals;
using namespace testing_util;

Deadline In(std::chrono::milliseconds ms) { return Clock::now() + ms; }

// Polls `done` for up to `limit`.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  for (Deadline end = In(limit); Clock::now() < end; std::this_thread::sleep_for(20ms)) {
    if (done()) return true;
  }
  return done();
}

class ScannerClientTest : public testing::Test {
 protected:
  ScannerOptions Options() {
    ScannerOptions options;
    options.executable = std::string(MUGAI_BIN_DIR) + "/mugai-scanner";
    options.signatures_dir = signatures_.path().string();
    options.threads = 4;
    options.reload_check = 3600s;  // reloads only when a test asks
    options.max_scan_bytes = 64u << 20;
    return options;
  }

  std::unique_ptr<ScannerClient> Started(ScannerOptions options) {
    auto client = std::make_unique<ScannerClient>(std::move(options));
    client->Start(In(60s));
    return client;
  }

  // A string no signature matches yet.
  std::string NextMarker() {
    return "mugai reload marker " + std::to_string(++markers_) + " of " + std::to_string(getpid());
  }

  // Adds signature Mugai.Test.Reload<N> for `marker` and waits for the
  // scanner to pick it up, after a SIGHUP or, without `signal`, by its
  // periodic check of the directory.
  void AddSignatureAndReload(ScannerClient& client, const std::string& marker, bool signal) {
    const uint64_t before = client.engine().signature_count();
    const std::string n = std::to_string(markers_);
    signatures_.AddBodySignature("reload-" + n + ".ndb", "Mugai.Test.Reload" + n, marker);
    if (signal) client.Reload();
    EXPECT_TRUE(WaitFor([&] { return client.engine().signature_count() > before; }))
        << "no reload after adding a signature";
  }

  SignatureDir signatures_;
  int markers_ = 0;
};

TEST_F(ScannerClientTest, StartsWithTheTestSignatures) {
  auto client = Started(Options());
  v1::worker::EngineInfo engine = client->engine();
  EXPECT_EQ(engine.directory(), signatures_.path().string());
  EXPECT_GE(engine.signature_count(), 2u);
  EXPECT_TRUE(engine.test_signatures_only());
  EXPECT_TRUE(engine.error().empty());
  EXPECT_GT(client->scanner_pid(), 0);
}

TEST_F(ScannerClientTest, VerdictsAndTypes) {
  auto client = Started(Options());
  ScanVerdict eicar = client->Scan(Eicar(), In(10s));
  ASSERT_TRUE(eicar.ok) << eicar.error;
  EXPECT_TRUE(eicar.detected);
  EXPECT_EQ(eicar.signature.rfind("Mugai.Test.EICAR", 0), 0u) << eicar.signature;
  EXPECT_EQ(eicar.location, "");  // the content itself
  EXPECT_EQ(eicar.mime_type, "text/plain");

  ScanVerdict zip = client->Scan(TestFile("clam.zip"), In(10s));
  ASSERT_TRUE(zip.ok) << zip.error;
  EXPECT_TRUE(zip.detected);
  EXPECT_EQ(zip.location, "clam.exe");
  EXPECT_EQ(zip.mime_type, "application/zip");
  EXPECT_FALSE(zip.description.empty());

  ScanVerdict clean = client->Scan("nothing to see here\n", In(10s));
  ASSERT_TRUE(clean.ok) << clean.error;
  EXPECT_FALSE(clean.detected);
  EXPECT_TRUE(clean.signature.empty());
  EXPECT_TRUE(clean.location.empty());
  EXPECT_EQ(clean.mime_type, "text/plain");
}

TEST_F(ScannerClientTest, ParallelScans) {
  auto client = Started(Options());
  const std::string eicar = Eicar(), exe = TestFile("clam.exe"), clean = RandomBytes(128 << 10);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        ScanVerdict a = client->Scan(eicar, In(20s));
        ScanVerdict b = client->Scan(exe, In(20s));
        ScanVerdict c = client->Scan(clean, In(20s));
        if (!a.ok || !a.detected || !b.ok || !b.detected || !c.ok || c.detected) ++wrong;
        if (b.mime_type != "application/vnd.microsoft.portable-executable") ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

TEST_F(ScannerClientTest, ReloadOnRequest) {
  auto client = Started(Options());
  const uint64_t before = client->engine().signature_count();
  const std::string marker = NextMarker();
  ScanVerdict verdict = client->Scan(marker, In(10s));
  ASSERT_TRUE(verdict.ok);
  EXPECT_FALSE(verdict.detected);

  AddSignatureAndReload(*client, marker, true);
  EXPECT_EQ(client->engine().signature_count(), before + 1);
  verdict = client->Scan(marker, In(10s));
  ASSERT_TRUE(verdict.ok);
  EXPECT_TRUE(verdict.detected);
  EXPECT_EQ(verdict.signature.rfind("Mugai.Test.Reload1", 0), 0u) << verdict.signature;
}

TEST_F(ScannerClientTest, ReloadWhenTheDirectoryChanges) {
  ScannerOptions options = Options();
  options.reload_check = 1s;
  auto client = Started(options);
  const std::string marker = NextMarker();
  AddSignatureAndReload(*client, marker, false);
  ScanVerdict verdict = client->Scan(marker, In(10s));
  ASSERT_TRUE(verdict.ok);
  EXPECT_TRUE(verdict.detected);
}

TEST_F(ScannerClientTest, ScansKeepSucceedingDuringReloads) {
  auto client = Started(Options());
  const std::string eicar = Eicar(), clean = RandomBytes(512 << 10);
  std::atomic<bool> stop{false};
  std::atomic<int> scans{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        ScanVerdict a = client->Scan(eicar, In(30s));
        ScanVerdict b = client->Scan(clean, In(30s));
        if (!a.ok || !a.detected || !b.ok || b.detected) ++failures;
        scans += 2;
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    const int before = scans;
    EXPECT_TRUE(WaitFor([&] { return scans >= before + 20; }));  // scans between reloads
    AddSignatureAndReload(*client, NextMarker(), true);
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, 0);
}

TEST_F(ScannerClientTest, FailedReloadKeepsTheEngine) {
  auto client = Started(Options());
  const uint64_t before = client->engine().signature_count();
  signatures_.Write("broken.ndb", "not a signature\n");
  client->Reload();
  ASSERT_TRUE(WaitFor([&] { return !client->engine().error().empty(); }));
  EXPECT_EQ(client->engine().signature_count(), before);
  ScanVerdict verdict = client->Scan(Eicar(), In(10s));
  EXPECT_TRUE(verdict.ok && verdict.detected);

  std::filesystem::remove(signatures_.path() / "broken.ndb");
  client->Reload();
  EXPECT_TRUE(WaitFor([&] { return client->engine().error().empty(); }));
}

TEST_F(ScannerClientTest, ScannerDeathFailsScansInFlightThenRestarts) {
  auto client = Started(Options());
  const pid_t first = client->scanner_pid();
  const std::string big = RandomBytes(16 << 20);
  std::atomic<int> ok{0}, died{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        ScanVerdict verdict = client->Scan(big, In(30s));
        if (verdict.ok) {
          ++ok;
        } else if (verdict.error == "scanner process died") {
          ++died;
        } else {
          ++other;
          ADD_FAILURE() << verdict.error;
        }
      }
    });
  }
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  for (std::thread& t : threads) t.join();
  EXPECT_GT(died, 0);
  EXPECT_EQ(other, 0);

  ScanVerdict verdict = client->Scan(Eicar(), In(30s));
  ASSERT_TRUE(verdict.ok) << verdict.error;
  EXPECT_TRUE(verdict.detected);
  EXPECT_GT(client->scanner_pid(), 0);
  EXPECT_NE(client->scanner_pid(), first);
}

TEST_F(ScannerClientTest, Timeouts) {
  auto client = Started(Options());
  ScanVerdict verdict = client->Scan("late", Clock::now() - 1s);
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.error, "scan timed out");

  // Too little time to send and scan 32 MB.
  const std::string big = RandomBytes(32 << 20);
  verdict = client->Scan(big, In(1ms));
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.error, "scan timed out");

  verdict = client->Scan(Eicar(), In(30s));
  ASSERT_TRUE(verdict.ok) << verdict.error;
  EXPECT_TRUE(verdict.detected);
}

TEST_F(ScannerClientTest, StuckScannerIsReplaced) {
  auto client = Started(Options());
  const pid_t stuck = client->scanner_pid();
  ASSERT_EQ(::kill(stuck, SIGSTOP), 0);
  ScanVerdict verdict = client->Scan("hello", In(6s));  // past the client's patience (5 s)
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.error, "scan timed out");
  verdict = client->Scan(Eicar(), In(30s));
  ASSERT_TRUE(verdict.ok) << verdict.error;
  EXPECT_TRUE(verdict.detected);
  EXPECT_NE(client->scanner_pid(), stuck);
  EXPECT_EQ(::kill(stuck, 0), -1);  // killed and reaped
}

TEST_F(ScannerClientTest, OversizedContentIsNotSent) {
  ScannerOptions options = Options();
  options.max_scan_bytes = 1 << 20;
  auto client = Started(options);
  const pid_t pid = client->scanner_pid();
  ScanVerdict verdict = client->Scan(std::string((1 << 20) + 1, 'a'), In(10s));
  EXPECT_FALSE(verdict.ok);
  EXPECT_NE(verdict.error.find("exceeds the scan limit"), std::string::npos) << verdict.error;
  EXPECT_EQ(client->scanner_pid(), pid);
  EXPECT_TRUE(client->Scan(std::string(1 << 20, 'a'), In(10s)).ok);
}

TEST_F(ScannerClientTest, StartFailures) {
  TempDir empty;
  ScannerOptions options = Options();
  options.signatures_dir = empty.path().string();
  ScannerClient no_signatures(options);
  try {
    no_signatures.Start(In(60s));
    ADD_FAILURE() << "started without signatures";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load signatures"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(no_signatures.Scan("x", In(1s)).ok);

  options = Options();
  options.executable = "/nonexistent/mugai-scanner";
  ScannerClient no_executable(options);
  EXPECT_THROW(no_executable.Start(In(10s)), std::runtime_error);
}

TEST_F(ScannerClientTest, DestructorStopsTheScanner) {
  auto client = Started(Options());
  const pid_t pid = client->scanner_pid();
  client.reset();
  EXPECT_EQ(::kill(pid, 0), -1);  // exited and reaped
  EXPECT_EQ(errno, ESRCH);
}

TEST(HoldsOfficialDatabase, LooksForMainOrDaily) {
  SignatureDir dir;
  EXPECT_FALSE(HoldsOfficialDatabase(dir.path()));
  dir.Write("daily.cld", "");
  EXPECT_TRUE(HoldsOfficialDatabase(dir.path()));
}

TEST(DefaultSignatureDirectory, SystemDatabaseElseTheTestSignatures) {
  if (HoldsOfficialDatabase("/var/lib/clamav")) {
    EXPECT_EQ(DefaultSignatureDirectory(), "/var/lib/clamav");
  } else {
    EXPECT_TRUE(std::filesystem::equivalent(DefaultSignatureDirectory(),
                                            std::string(MUGAI_SAMPLES_DIR) + "/signatures"));
  }
}

}  // namespace
}  // namespace mugai

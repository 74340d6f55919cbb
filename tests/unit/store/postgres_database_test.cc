// The PostgreSQL side of the SQL layer against a real server: the private
// cluster tests/support/postgres_cluster.py starts, reached through
// MUGAI_TEST_POSTGRES. Each test works in a database of its own.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <barrier>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "service/store/sql_database.h"

namespace mugai {
namespace {

struct PgConnDeleter {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};

// CREATE DATABASE cannot run inside a transaction, so not through Transact.
void ExecOutsideTransaction(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, PgConnDeleter> connection(PQconnectdb(conninfo.c_str()));
  ASSERT_EQ(PQstatus(connection.get()), CONNECTION_OK) << PQerrorMessage(connection.get());
  PQsetNoticeProcessor(connection.get(), [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  std::unique_ptr<PGresult, PgResultDeleter> result(PQexec(connection.get(), sql.c_str()));
  ASSERT_EQ(PQresultStatus(result.get()), PGRES_COMMAND_OK) << PQerrorMessage(connection.get());
}

class PostgresDatabaseTest : public testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("MUGAI_TEST_POSTGRES");
    if (server == nullptr) GTEST_SKIP() << "MUGAI_TEST_POSTGRES is not set (ctest sets it)";
    std::string name = testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ExecOutsideTransaction(server, "DROP DATABASE IF EXISTS " + name);
    ExecOutsideTransaction(server, "CREATE DATABASE " + name);
    // In a conninfo string the last value of a keyword wins.
    conninfo_ = std::string(server) + " dbname=" + name;
  }

  std::unique_ptr<SqlDatabase> Open(unsigned connections = 4) { return OpenPostgresDatabase(conninfo_, connections); }

  std::string conninfo_;
};

TEST_F(PostgresDatabaseTest, RoundTripsEveryKindOfValue) {
  auto database = Open();
  EXPECT_EQ(database->dialect(), SqlDatabase::Dialect::kPostgres);
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  std::string large(3 << 20, '\0');  // a few MB, every byte value
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7919 % 251);

  SqlRows rows;
  database->Transact([&](SqlSession& session) {
    session.Query("CREATE TABLE t (n bigint, s text, b bytea, e bytea, z bytea)");
    session.Query("INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
                  {int64_t{-9007199254740993}, std::string_view("日本語 'quoted' $1"), SqlBytes{every_byte},
                   SqlBytes{""}, nullptr});
    session.Query("INSERT INTO t (b) VALUES ($1)", {SqlBytes{large}});
    rows = session.Query("SELECT n, s, b, e, z, length(b) FROM t ORDER BY n NULLS LAST");
  });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.Int(0, 0), -9007199254740993);
  EXPECT_EQ(rows.Text(0, 1), "日本語 'quoted' $1");
  EXPECT_EQ(rows.Text(0, 2), every_byte);
  EXPECT_FALSE(rows.IsNull(0, 3));  // empty bytes are not NULL
  EXPECT_EQ(rows.Text(0, 3), "");
  EXPECT_TRUE(rows.IsNull(0, 4));
  EXPECT_EQ(rows.Int(0, 5), 256);
  EXPECT_EQ(rows.Text(1, 2), large);
  EXPECT_TRUE(rows.IsNull(1, 0));
}

TEST_F(PostgresDatabaseTest, TextWithNulIsRefusedNotTruncated) {
  auto database = Open();
  std::string with_nul("a\0b", 3);
  EXPECT_THROW(database->Transact([&](SqlSession& session) { session.Query("SELECT $1::text", {with_nul}); }),
               StoreError);
}

TEST_F(PostgresDatabaseTest, ThrowingWorkRollsBack) {
  auto database = Open();
  database->Transact([](SqlSession& session) { session.Query("CREATE TABLE t (n bigint)"); });
  EXPECT_THROW(database->Transact([](SqlSession& session) {
    session.Query("INSERT INTO t VALUES (1)");
    throw StoreError("the work changed its mind");
  }),
               StoreError);
  // A failed statement is not retried and nothing of its transaction stays.
  EXPECT_THROW(database->Transact([](SqlSession& session) {
    session.Query("INSERT INTO t VALUES (2)");
    session.Query("INSERT INTO no_such_table VALUES (3)");
  }),
               StoreError);
  database->Transact([](SqlSession& session) { EXPECT_TRUE(session.Query("SELECT n FROM t").empty()); });
}

TEST_F(PostgresDatabaseTest, WorkThatSwallowsAFailedStatementDoesNotCommit) {
  auto database = Open();
  database->Transact([](SqlSession& session) { session.Query("CREATE TABLE t (n bigint)"); });
  EXPECT_THROW(database->Transact([](SqlSession& session) {
    session.Query("INSERT INTO t VALUES (1)");
    try {
      session.Query("SELECT 1/0");
    } catch (const StoreError&) {
    }
  }),
               StoreError);
  database->Transact([](SqlSession& session) { EXPECT_TRUE(session.Query("SELECT n FROM t").empty()); });
}

TEST_F(PostgresDatabaseTest, SchemaVersionStartsAtZeroAndPersists) {
  {
    auto database = Open();
    database->Transact([&](SqlSession& session) {
      EXPECT_EQ(database->SchemaVersion(session), 0);
      database->SetSchemaVersion(session, 3);
      EXPECT_EQ(database->SchemaVersion(session), 3);
      database->SetSchemaVersion(session, 4);
    });
  }
  auto reopened = Open();
  reopened->Transact([&](SqlSession& session) { EXPECT_EQ(reopened->SchemaVersion(session), 4); });
}

// Two mugaid starting at once on an empty database: exactly one migrates.
TEST_F(PostgresDatabaseTest, ConcurrentMigrationsRunOnce) {
  constexpr int kProcesses = 6;
  std::atomic<int> migrations = 0;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kProcesses);
  for (int i = 0; i < kProcesses; ++i) {
    threads.emplace_back([&, i] {
      try {
        auto database = Open(1);
        database->Transact([&](SqlSession& session) {
          if (database->SchemaVersion(session) >= 1) return;
          session.Query("CREATE TABLE items (id text PRIMARY KEY)");
          database->SetSchemaVersion(session, 1);
          ++migrations;
        });
      } catch (const std::exception& error) {
        errors[i] = error.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");
  EXPECT_EQ(migrations, 1);
}

// Each appender reads the end of the chain and appends after it; the lock
// (and READ COMMITTED seeing what the previous holder committed) keeps the
// sequence gapless and unforked across pools, i.e. processes.
TEST_F(PostgresDatabaseTest, AuditChainLockSerializesAppends) {
  auto setup = Open(1);
  setup->Transact([](SqlSession& session) {
    session.Query("CREATE TABLE chain (seq bigint PRIMARY KEY, prev bigint NOT NULL)");
  });
  constexpr int kPools = 3, kThreadsPerPool = 4, kAppends = 15;
  std::vector<std::unique_ptr<SqlDatabase>> pools;
  for (int i = 0; i < kPools; ++i) pools.push_back(Open(kThreadsPerPool));
  std::vector<std::thread> threads;
  std::atomic<int> failures = 0;
  for (int t = 0; t < kPools * kThreadsPerPool; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        try {
          pools[t % kPools]->Transact([](SqlSession& session) {
            session.LockAuditChain();
            int64_t last = session.Query("SELECT coalesce(max(seq), 0) FROM chain").Int(0, 0);
            session.Query("INSERT INTO chain VALUES ($1, $2)", {last + 1, last});
          });
        } catch (const StoreError&) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  setup->Transact([](SqlSession& session) {
    SqlRows rows = session.Query("SELECT count(*), max(seq), count(*) FILTER (WHERE prev <> seq - 1) FROM chain");
    EXPECT_EQ(rows.Int(0, 0), kPools * kThreadsPerPool * kAppends);
    EXPECT_EQ(rows.Int(0, 1), kPools * kThreadsPerPool * kAppends);
    EXPECT_EQ(rows.Int(0, 2), 0);
  });
}

// Two transactions taking two rows in opposite order: the server kills one
// as the deadlock victim (40P01), and Transact runs it again.
TEST_F(PostgresDatabaseTest, DeadlockVictimIsRetried) {
  auto database = Open(2);
  database->Transact([](SqlSession& session) {
    session.Query("CREATE TABLE r (id bigint PRIMARY KEY, n bigint NOT NULL)");
    session.Query("INSERT INTO r VALUES (1, 0), (2, 0)");
  });
  std::barrier both_hold_one(2);
  std::atomic<int> runs = 0;
  auto transfer = [&](int64_t first, int64_t second) {
    bool first_run = true;
    database->Transact([&](SqlSession& session) {
      ++runs;
      session.Query("UPDATE r SET n = n + 1 WHERE id = $1", {first});
      if (first_run) {
        first_run = false;
        both_hold_one.arrive_and_wait();
      }
      session.Query("UPDATE r SET n = n + 1 WHERE id = $1", {second});
    });
  };
  std::thread a(transfer, 1, 2), b(transfer, 2, 1);
  a.join();
  b.join();
  EXPECT_EQ(runs, 3);
  database->Transact([](SqlSession& session) {
    EXPECT_EQ(session.Query("SELECT sum(n) FROM r").Int(0, 0), 4);
  });
}

TEST_F(PostgresDatabaseTest, LostConnectionIsRetriedOnAFreshOne) {
  auto database = Open(1);
  database->Transact([](SqlSession& session) { session.Query("CREATE TABLE t (n bigint)"); });
  std::set<std::string> backends;
  database->Transact([&](SqlSession& session) {
    session.Query("INSERT INTO t VALUES (1)");
    backends.insert(session.Query("SELECT pg_backend_pid()").Text(0, 0));
    if (backends.size() == 1) session.Query("SELECT pg_terminate_backend(pg_backend_pid())");
  });
  EXPECT_EQ(backends.size(), 2u);
  database->Transact([](SqlSession& session) { EXPECT_EQ(session.Query("SELECT count(*) FROM t").Int(0, 0), 1); });
}

// A server restart or failover leaves every pooled connection dead: the
// first broken one must not cost one attempt per idle connection.
TEST_F(PostgresDatabaseTest, EveryIdleConnectionDeadIsSurvived) {
  constexpr int kConnections = 8;  // more than a transaction's attempts
  auto database = Open(kConnections);
  std::barrier all_leased(kConnections);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&] {
      bool first_run = true;
      database->Transact([&](SqlSession& session) {
        session.Query("SELECT 1");
        if (std::exchange(first_run, false)) all_leased.arrive_and_wait();
      });
    });
  }
  for (std::thread& thread : threads) thread.join();
  ExecOutsideTransaction(conninfo_,
                         "DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid(); END $$");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the backends exit
  database->Transact([](SqlSession& session) { EXPECT_EQ(session.Query("SELECT 1").Int(0, 0), 1); });
}

TEST_F(PostgresDatabaseTest, PoolNeverOpensMoreThanItsConnections) {
  auto database = Open(2);
  std::mutex mutex;
  std::set<std::string> backends;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      database->Transact([&](SqlSession& session) {
        std::string pid = session.Query("SELECT pg_backend_pid() FROM pg_sleep(0.05)").Text(0, 0);
        std::lock_guard lock(mutex);
        backends.insert(pid);
      });
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(backends.size(), 2u);
}

TEST_F(PostgresDatabaseTest, ErrorsNameTheServerButNeverThePassword) {
  try {
    OpenPostgresDatabase("host=/nonexistent/socket port=5999 dbname=x user=u password=hunter2secret", 1);
    FAIL() << "connected to nothing";
  } catch (const StoreError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("/nonexistent/socket"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2secret"), std::string::npos) << message;
  }
  try {
    OpenPostgresDatabase("host=/tmp password=hunter2secret 'unterminated", 1);
    FAIL() << "accepted a broken connection string";
  } catch (const StoreError& error) {
    EXPECT_EQ(std::string(error.what()).find("hunter2secret"), std::string::npos) << error.what();
  }
  try {
    OpenPostgresDatabase(conninfo_ + " password=wrong-hunter2secret", 1);
    FAIL() << "a wrong password was accepted";
  } catch (const StoreError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2secret"), std::string::npos) << message;
  }
  auto database = Open(1);
  try {
    database->Transact([](SqlSession& session) { session.Query("SELECT * FROM no_such_table"); });
    FAIL() << "queried a missing table";
  } catch (const StoreError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("no_such_table"), std::string::npos) << message;
    EXPECT_NE(message.find("42P01"), std::string::npos) << message;
    std::string password = conninfo_.substr(conninfo_.find("password=") + 9);
    password = password.substr(0, password.find(' '));
    ASSERT_FALSE(password.empty());
    EXPECT_EQ(message.find(password), std::string::npos) << message;
  }
}

TEST_F(PostgresDatabaseTest, ZeroConnectionsIsRefused) { EXPECT_THROW(Open(0), StoreError); }

}  // namespace
}  // namespace mugai

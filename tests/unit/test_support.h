// Helpers shared by the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sanitizers/worker/converter.h"

namespace mugai::test {

// The whole file; a test failure (and "") when it cannot be read.
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A file of ../shared/corpus, by its path there.
inline std::string ReadCorpusFile(const std::string& path) {
  return ReadFile(std::filesystem::path(MUGAI_CORPUS_DIR) / path);
}

// The sandbox layers a worker reports missing, less the one an
// AddressSanitizer build leaves off on purpose (RLIMIT_AS: its shadow
// memory needs terabytes of address space). Empty: everything in force.
inline std::string MissingLayers(const v1::worker::WorkerHello& hello) {
  std::string missing;
  for (const std::string& layer : hello.missing()) {
    if (layer != "RLIMIT_AS (AddressSanitizer build)") missing += layer + "\n";
  }
  return missing;
}

// Keeps every record a converter emits.
struct Recorder : RecordSink {
  std::vector<v1::worker::Record> records;
  void Emit(v1::worker::Record record) override { records.push_back(std::move(record)); }
};

}  // namespace mugai::test

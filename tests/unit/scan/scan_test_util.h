// Shared by the scan tests: test content and throwaway signature directories.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mugai::testing_util {

// The EICAR test string, assembled here so that no file in the tree (source
// or binary) holds it whole.
inline std::string Eicar() {
  std::string first = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR";
  return first + "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

inline std::string TestFile(const char* name) {
  return ReadFile(std::filesystem::path(MUGAI_TESTFILES_DIR) / name);
}

inline std::string RandomBytes(size_t size, uint64_t seed = 1) {
  std::mt19937_64 random(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

inline std::string Hex(std::string_view bytes) {
  std::string hex;
  char digits[3];
  for (unsigned char c : bytes) {
    std::snprintf(digits, sizeof digits, "%02x", c);
    hex += digits;
  }
  return hex;
}

// A fresh directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mugai-scan-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    // The sandboxed scanner reads signatures as nobody, as it reads the
    // world-readable /var/lib/clamav in production.
    std::filesystem::permissions(path_, std::filesystem::perms(0755));
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A copy of the bundled test signatures that a test may add to.
class SignatureDir : public TempDir {
 public:
  SignatureDir() {
    for (const auto& entry : std::filesystem::directory_iterator(
             std::filesystem::path(MUGAI_SAMPLES_DIR) / "signatures")) {
      std::filesystem::copy(entry.path(), path() / entry.path().filename());
    }
  }

  // Adds a body signature `name` for `bytes`, written to a temporary name
  // and renamed, as freshclam does, so a reload never sees half a file.
  void AddBodySignature(const std::string& file, const std::string& name, std::string_view bytes) {
    Write(file, name + ":0:*:" + Hex(bytes) + "\n");
  }

  void Write(const std::string& file, const std::string& text) {
    std::filesystem::path staging = path() / (file + ".tmp-staging");
    std::ofstream(staging, std::ios::binary) << text;
    std::filesystem::rename(staging, path() / file);
  }
};

}  // namespace mugai::testing_util

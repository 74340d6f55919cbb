#include "service/store/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/core/unique_fd.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void ThrowErrno(std::string_view what, const fs::path& path) {
  throw StoreError(ErrnoText(std::string(what) + " " + path.string()));
}

void SyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) ThrowErrno("cannot open directory", dir);
  if (::fsync(fd.get()) != 0) ThrowErrno("cannot fsync directory", dir);
}

std::optional<std::string> ReadFile(const fs::path& file) {
  // O_NOFOLLOW: a symlink planted in the blob directory is not followed.
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    ThrowErrno("cannot open", file);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("cannot stat", file);
  std::string data;
  data.reserve(static_cast<size_t>(st.st_size));
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n == 0) return data;
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot read", file);
    }
    data.append(buffer, static_cast<size_t>(n));
  }
}

void WriteAll(int fd, std::string_view bytes, const fs::path& file) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot write", file);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// Unlinks a temporary file unless it was renamed into place.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

bool IsDigest(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

void EnsurePrivateDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    fs::path parent = dir.parent_path();
    SyncDirectory(parent.empty() ? fs::path(".") : parent);
    return;
  }
  if (errno != EEXIST) ThrowErrno("cannot create directory", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) ThrowErrno("cannot stat", dir);
  if (!S_ISDIR(st.st_mode)) throw StoreError(dir.string() + " exists and is not a directory");
}

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
  EnsurePrivateDirectory(root_);
  EnsurePrivateDirectory(root_ / "tmp");
}

void BlobStore::Put(std::string_view sha256, std::string_view bytes) {
  fs::path file = PathOf(sha256);
  if (Sha256Hex(bytes) != sha256) {
    throw StoreError("blob content does not match its SHA-256 " + std::string(sha256));
  }
  std::optional<std::string> existing = ReadFile(file);
  if (existing && *existing == bytes) return;
  if (existing) LogWarn("replacing blob " + file.string() + ": its content no longer matches its name");

  EnsurePrivateDirectory(file.parent_path());
  std::string temp = (root_ / "tmp" / "blob-XXXXXX").string();
  UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));  // mode 0600
  if (!fd.valid()) ThrowErrno("cannot create a temporary file in", root_ / "tmp");
  TempFileGuard guard(temp);
  WriteAll(fd.get(), bytes, temp);
  if (::fsync(fd.get()) != 0) ThrowErrno("cannot fsync", temp);
  if (::close(fd.release()) != 0) ThrowErrno("cannot close", temp);
  if (::rename(temp.c_str(), file.c_str()) != 0) ThrowErrno("cannot rename " + temp + " to", file);
  guard.Release();
  SyncDirectory(file.parent_path());
}

std::optional<std::string> BlobStore::Get(std::string_view sha256) const {
  fs::path file = PathOf(sha256);
  std::optional<std::string> data = ReadFile(file);
  if (data && Sha256Hex(*data) != sha256) {
    throw StoreError("blob " + file.string() +
                     " does not match its SHA-256: corrupted on disk or tampered with");
  }
  return data;
}

void BlobStore::Remove(std::string_view sha256) {
  fs::path file = PathOf(sha256);
  if (::unlink(file.c_str()) != 0) {
    if (errno == ENOENT) return;
    ThrowErrno("cannot remove", file);
  }
  // Deleting an original is a retention decision; a crash must not bring it back.
  SyncDirectory(file.parent_path());
}

fs::path BlobStore::PathOf(std::string_view sha256) const {
  if (!IsDigest(sha256)) throw StoreError("not a SHA-256 digest: \"" + std::string(sha256) + "\"");
  return root_ / sha256.substr(0, 2) / sha256;
}

}  // namespace mugai

#include "service/store/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"
#include "service/store/item_store.h"  // StoreError

namespace mugai {

namespace fs = std::filesystem;

void SyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) throw StoreError(ErrnoText("cannot open directory " + dir.string()));
  if (::fsync(fd.get()) != 0) throw StoreError(ErrnoText("cannot fsync directory " + dir.string()));
}

void EnsurePrivateDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    fs::path parent = dir.parent_path();
    SyncDirectory(parent.empty() ? fs::path(".") : parent);
    return;
  }
  if (errno != EEXIST) throw StoreError(ErrnoText("cannot create directory " + dir.string()));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) throw StoreError(ErrnoText("cannot stat " + dir.string()));
  if (!S_ISDIR(st.st_mode)) throw StoreError(dir.string() + " exists and is not a directory");
}

}  // namespace mugai

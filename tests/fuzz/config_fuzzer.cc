// The configuration parser (toml++ and our table readers) on any text: the
// input is a config file's contents. Refusing it is fine when the refusal is
// a ConfigError (with file and line); any other exception, or a crash, is a
// bug: mugaid would die on a typo instead of saying where it is.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "sanitizers/core/unique_fd.h"
#include "service/config/config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // LoadConfig reads a path; a memfd gives it one without touching disk.
  mugai::UniqueFd file(memfd_create("mugai-fuzz.toml", MFD_CLOEXEC));
  FUZZ_ASSERT(file.valid());
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(file.get(), data + done, size - done);
    FUZZ_ASSERT(n > 0);
    done += static_cast<size_t>(n);
  }
  try {
    mugai::LoadConfig("/proc/self/fd/" + std::to_string(file.get()));
  } catch (const mugai::ConfigError&) {
    // A clean refusal.
  }
  return 0;
}

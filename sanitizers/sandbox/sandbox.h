// Confinement of a worker process by itself, after it has loaded what it
// needs and before it reads its first job. Assume the parser inside will be
// compromised: afterwards the process has no user of its own on the host
// (nobody, in a user namespace of its own), no network (an empty network
// namespace, and no socket(2) at all), an empty read-only filesystem
// (a tmpfs root holding read-only binds of `readable_paths` only), no
// privileges (no capabilities, no_new_privs), a seccomp-bpf allow-list of
// system calls (anything else kills the process with SIGSYS), and rlimits
// on memory, CPU time, file size, open files and processes.
//
// The kernel may refuse some layers (user namespaces disabled, say). The
// others still apply, and the report says which are in force and which
// are missing, so that the daemon can say it loudly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mugai {

struct SandboxPolicy {
  std::vector<std::string> readable_paths;  // bound read-only at the same path
  uint64_t memory_bytes = uint64_t{1} << 30;  // RLIMIT_AS
  uint64_t cpu_seconds = 600;                 // RLIMIT_CPU over the process's life; 0: none
  uint64_t open_files = 32;                   // RLIMIT_NOFILE
  // A private writable tmpfs at kScratchDir inside the root, of this size, and
  // the system calls to create, write and remove files in it (libclamav
  // unpacks some containers to temporary files). 0: none, RLIMIT_FSIZE=0.
  uint64_t scratch_bytes = 0;
  // May start threads (clone with CLONE_THREAD); never processes.
  bool threads = false;
};

struct SandboxReport {
  std::vector<std::string> active;   // e.g. "seccomp allow-list"
  std::vector<std::string> missing;  // e.g. "user namespace (unshare: Operation not permitted)"
};

// The policy of the text and HTML converters.
SandboxPolicy ConverterPolicy(uint64_t memory_bytes);

// Where the scratch tmpfs is, inside the sandbox.
inline constexpr char kScratchDir[] = "/scratch";

// The policy of the scanner: threads, the signature directory readable for
// reloads, a scratch tmpfs for libclamav, more memory for the engine, and
// no CPU limit (it is a long-lived service; the daemon times out scans).
SandboxPolicy ScannerPolicy(const std::string& signatures_dir, uint64_t max_scan_bytes);

// Never returns with the process less confined than the report says. Exits
// the process (status 125) if seccomp cannot be installed: without the
// allow-list the other layers are not worth running a parser under.
SandboxReport EnterSandbox(const SandboxPolicy& policy);

}  // namespace mugai

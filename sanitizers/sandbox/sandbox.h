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

// Where the scratch tmpfs is, inside the sandbox, unless a policy says.
inline constexpr char kScratchDir[] = "/scratch";

struct SandboxPolicy {
  // Directories and files bound read-only at the same path; programs in
  // them stay executable (when `processes` allows exec at all).
  std::vector<std::string> readable_paths;
  uint64_t memory_bytes = uint64_t{1} << 30;  // RLIMIT_AS
  uint64_t cpu_seconds = 600;                 // RLIMIT_CPU over the process's life; 0: none
  uint64_t open_files = 32;                   // RLIMIT_NOFILE
  // A private writable tmpfs at scratch_dir inside the root, of this size, and
  // the system calls to create, write and remove files in it (libclamav
  // unpacks some containers to temporary files). 0: none, RLIMIT_FSIZE=0.
  uint64_t scratch_bytes = 0;
  std::string scratch_dir = kScratchDir;
  // May start threads (clone with CLONE_THREAD); never processes.
  bool threads = false;
  // May start processes and run the programs bound into its root (a
  // converter that drives LibreOffice). The seccomp filter is then a
  // deny-list instead of an allow-list (see OfficePolicy), and the worker
  // becomes the init of a PID namespace of its own: whatever it starts
  // dies with it, and kill(-1) reaches only its own descendants.
  bool processes = false;
  // Device nodes bound at the same path (read-write, unlike
  // readable_paths): /dev/null, /dev/urandom. Only with `processes`.
  std::vector<std::string> device_paths;
  // RLIMIT_NPROC with `processes`: counted per user namespace, so per
  // worker; it bounds a fork bomb. (Without `processes` it is 0, or unset
  // with `threads`.)
  uint64_t max_processes = 0;
};

struct SandboxReport {
  std::vector<std::string> active;   // e.g. "seccomp allow-list"
  std::vector<std::string> missing;  // e.g. "user namespace (unshare: Operation not permitted)"
};

// The policy of the converters (text, HTML, PDF, images): threads, as
// libvips needs, but no processes.
SandboxPolicy ConverterPolicy(uint64_t memory_bytes);

// The policy of the scanner: threads, the signature directory readable for
// reloads, a scratch tmpfs for libclamav, more memory for the engine, and
// no CPU limit (it is a long-lived service; the daemon times out scans).
SandboxPolicy ScannerPolicy(const std::string& signatures_dir, uint64_t max_scan_bytes);

// The policy of the Office worker (sanitizers/office/): LibreOffice runs as
// a program of its own per job, so it may fork, exec and make threads.
// Bound read-only: LibreOffice, the shared libraries, fonts (with
// fonts-noto-cjk) and fontconfig, /etc/ld.so.cache; /dev/null and
// /dev/urandom; a scratch tmpfs (noexec) of `scratch_bytes` for each job's
// input, output and throw-away profile. The seccomp deny-list kills the
// process on calls that reach kernel attack surface or out of the sandbox
// (ptrace, process_vm_*, mount and the new mount API, namespaces through
// unshare/setns/clone flags, bpf, perf_event_open, userfaultfd, keyctl,
// module loading, kexec, reboot, clock setting, TIOCSTI, ...), refuses
// io_uring and sockets of any family but AF_UNIX (LibreOffice's own
// single-instance pipe), and allows the rest. The scratch is at /tmp, where
// LibreOffice puts that pipe whatever TMPDIR says.
SandboxPolicy OfficePolicy(uint64_t memory_bytes, uint64_t scratch_bytes);

// Never returns with the process less confined than the report says. Exits
// the process (status 125) if seccomp cannot be installed: without the
// allow-list the other layers are not worth running a parser under; nor,
// with `processes`, if the empty root cannot be made.
SandboxReport EnterSandbox(const SandboxPolicy& policy);

// EnterSandbox in two steps, for a process that must load what it needs
// inside its root before it is locked down, and may start threads while it
// does: the namespaces must come first, because unshare refuses a process
// that has more than one thread. EnterRoot gives up root, enters the
// namespaces and the empty root (the process now sees only the policy's
// files, but may still make any system call); LockDown adds the rlimits,
// no_new_privs, the capability drop and seccomp. EnterSandbox(p) is
// LockDown(EnterRoot(p)). Both exit the process as EnterSandbox does.
struct RootedSandbox {
  SandboxPolicy policy;
  SandboxReport report;  // so far
  bool have_root;
};
RootedSandbox EnterRoot(const SandboxPolicy& policy);
SandboxReport LockDown(RootedSandbox rooted);

}  // namespace mugai

#include "sanitizers/sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"

namespace mugai {
namespace {

constexpr uid_t kNobody = 65534;
// The new root is a tmpfs mounted here, inside the private mount namespace
// (so the host's /tmp is untouched), then entered with chroot.
constexpr char kNewRoot[] = "/tmp";

class Layers {
 public:
  Layers() = default;
  explicit Layers(SandboxReport report) : report_(std::move(report)) {}
  void Active(std::string what) { report_.active.push_back(std::move(what)); }
  void Missing(std::string what) { report_.missing.push_back(std::move(what)); }
  SandboxReport Done() { return std::move(report_); }

 private:
  SandboxReport report_;
};

bool WriteFile(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// A worker started by root gives up root before anything else; the user
// namespace that follows then belongs to nobody, not to root.
void DropRoot(Layers& layers) {
  if (geteuid() != 0) {
    layers.Active("unprivileged user " + std::to_string(geteuid()));
    return;
  }
  if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
      setresuid(kNobody, kNobody, kNobody) != 0) {
    layers.Missing(ErrnoText("user nobody"));
    return;
  }
  // Changing ids made us non-dumpable, which would hand /proc/self (and
  // the id maps we write next) to root.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  layers.Active("user nobody");
}

// After unshare(CLONE_NEWPID) only children enter the new namespace, so the
// process forks: the child, PID 1 there, goes on to be the worker; the
// parent only waits and ends as the child did (a SIGSYS stays a SIGSYS for
// the pool). When the parent is killed, PR_SET_PDEATHSIG kills the child,
// and the kernel every process in its namespace: no LibreOffice outlives
// its worker. Should the parent die before the child has set that, the
// child still sees its channel close at its next read.
void BecomeNamespaceInit(Layers& layers) {
  pid_t child = fork();
  if (child < 0) {
    layers.Missing(ErrnoText("PID namespace (fork)"));
    return;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    layers.Active("PID namespace (the worker is its init; its processes die with it)");
    return;
  }
  // The channel and everything else belong to the child alone.
  close_range(3, ~0U, 0);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(WTERMSIG(status), SIG_DFL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, nullptr);
    raise(WTERMSIG(status));
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

bool Unshare(const SandboxPolicy& policy, Layers& layers) {
  // Read before unshare: inside, until mapped, we are the overflow id.
  const std::string uid = std::to_string(getuid()), gid = std::to_string(getgid());
  const int pid_namespace = policy.processes ? CLONE_NEWPID : 0;
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | pid_namespace) != 0) {
    layers.Missing(ErrnoText("user, mount, network, IPC and UTS namespaces (unshare)"));
    return false;
  }
  // Our one outside id is mapped (as 0) so that files we create in the new
  // root have an owner inside the namespace.
  if (!WriteFile("/proc/self/setgroups", "deny") ||
      !WriteFile("/proc/self/uid_map", "0 " + uid + " 1") ||
      !WriteFile("/proc/self/gid_map", "0 " + gid + " 1")) {
    layers.Missing(ErrnoText("user namespace id map"));
  }
  layers.Active("user, mount, network (empty), IPC and UTS namespaces");
  // Without `processes` a PID namespace would not matter: it takes effect
  // only for children, and the worker may not have any (seccomp refuses
  // fork, and clone without CLONE_THREAD).
  if (policy.processes) BecomeNamespaceInit(layers);
  return true;
}

// Requires the namespaces: mounts are private to this process from here.
bool EmptyRoot(const SandboxPolicy& policy, Layers& layers) {
  namespace fs = std::filesystem;
  auto fail = [&](const std::string& what) {
    layers.Missing("empty filesystem view (" + ErrnoText(what) + "); no files can be opened at all");
    return false;
  };
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return fail("make mounts private");
  // Held open before the new root covers kNewRoot, which may contain them.
  struct Source {
    std::string path;
    UniqueFd fd;
    bool device;
  };
  std::vector<Source> sources;
  for (bool device : {false, true}) {
    for (const std::string& path : device ? policy.device_paths : policy.readable_paths) {
      UniqueFd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
      if (fd.valid()) sources.push_back({path, std::move(fd), device});
    }
  }
  if (mount("tmpfs", kNewRoot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") != 0) {
    return fail("mount tmpfs");
  }
  std::string binds;
  std::string devices;
  for (const auto& [path, fd, device] : sources) {
    fs::path target = fs::path(kNewRoot) / fs::path(path).relative_path();
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return fail("stat " + path);
    std::error_code ec;
    // A file (ld.so.cache, a device) is bound onto an empty file.
    fs::create_directories(S_ISDIR(st.st_mode) ? target : target.parent_path(), ec);
    if (ec) return fail("mkdir " + target.string());
    if (!S_ISDIR(st.st_mode) && !UniqueFd(open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)).valid()) {
      return fail("create " + target.string());
    }
    const std::string source = "/proc/self/fd/" + std::to_string(fd.get());
    // Not recursive: mounts below `path` stay out of the view rather than
    // come in writable. A source mounted noexec has that flag locked, so
    // the read-only remount must repeat it. Devices stay writable (writes
    // to /dev/null) and usable (no MS_NODEV), but nothing runs from them.
    const unsigned long flags = device ? MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC
                                       : MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        (mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0 &&
         mount(nullptr, target.c_str(), nullptr, flags | MS_NOEXEC, nullptr) != 0)) {
      return fail("bind " + path);
    }
    (device ? devices : binds) += " " + path;
  }
  if (policy.scratch_bytes > 0) {
    const std::string scratch = std::string(kNewRoot) + policy.scratch_dir;
    const std::string options = "size=" + std::to_string(policy.scratch_bytes) + ",mode=0700";
    if (mkdir(scratch.c_str(), 0700) != 0 ||
        mount("tmpfs", scratch.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) != 0) {
      return fail("scratch tmpfs");
    }
  }
  if (mount(nullptr, kNewRoot, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=64k,mode=0755") != 0) {
    return fail("make the root read-only");
  }
  if (chdir(kNewRoot) != 0 || chroot(".") != 0 || chdir("/") != 0) return fail("chroot");
  layers.Active("empty read-only root" + (binds.empty() ? std::string() : " (read-only:" + binds + ")") +
                (devices.empty() ? std::string() : ", devices" + devices) +
                (policy.scratch_bytes ? ", scratch " + policy.scratch_dir + " of " +
                                            std::to_string(policy.scratch_bytes) + " bytes"
                                      : ""));
  return true;
}

void DropCapabilities(Layers& layers) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) {
    layers.Missing(ErrnoText("drop capabilities"));
    return;
  }
  layers.Active("no capabilities");
}

void Limit(int resource, uint64_t value, const char* name, Layers& layers) {
  rlimit limit{value, value};
  if (setrlimit(resource, &limit) != 0) {
    layers.Missing(ErrnoText(name));
    return;
  }
  layers.Active(std::string(name) + "=" + std::to_string(value));
}

void Rlimits(const SandboxPolicy& policy, Layers& layers) {
  // Past RLIMIT_FSIZE a write fails with EFBIG instead of killing us: stderr
  // may be the daemon's log file, and a log line must not end a worker.
  signal(SIGXFSZ, SIG_IGN);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer reserves terabytes of address space for its shadow.
  layers.Missing("RLIMIT_AS (AddressSanitizer build)");
#else
  Limit(RLIMIT_AS, policy.memory_bytes, "RLIMIT_AS", layers);
#endif
  if (policy.cpu_seconds) Limit(RLIMIT_CPU, policy.cpu_seconds, "RLIMIT_CPU", layers);
  Limit(RLIMIT_FSIZE, policy.scratch_bytes, "RLIMIT_FSIZE", layers);
  Limit(RLIMIT_NOFILE, policy.open_files, "RLIMIT_NOFILE", layers);
  // Threads count against RLIMIT_NPROC (per user, and every worker is
  // nobody), so a threaded process relies on seccomp alone to stay
  // childless.
  if (policy.processes) {
    Limit(RLIMIT_NPROC, policy.max_processes, "RLIMIT_NPROC", layers);
  } else if (!policy.threads) {
    Limit(RLIMIT_NPROC, 0, "RLIMIT_NPROC", layers);
  }
  Limit(RLIMIT_CORE, 0, "RLIMIT_CORE", layers);
}

struct SeccompRelease {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

// What a converter needs: memory, time, its own channel, and read-only
// opens of the paths bound into its root. No sockets, no process creation,
// no writes to files, no signals to others.
// `have_root`: the empty root is in force; only then may files be opened
// (read-only, or in the scratch tmpfs).
bool InstallSeccomp(const SandboxPolicy& policy, bool have_root, Layers& layers) {
  std::unique_ptr<void, SeccompRelease> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) {
    layers.Missing("seccomp (seccomp_init)");
    return false;
  }
  static constexpr int kAllowed[] = {
      SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev),
      SCMP_SYS(recvfrom), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(close),
      SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(getdents64),
      SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(brk),
      SCMP_SYS(madvise), SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(exit),
      SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
      SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack), SCMP_SYS(clock_gettime),
      SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(pause), SCMP_SYS(restart_syscall),
      SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getrandom),
      // glibc's qsort_r asks for the machine's memory size (FreeType sorts
      // with it when loading some fonts).
      SCMP_SYS(sysinfo),
#if defined(__SANITIZE_ADDRESS__)
      // The sanitizer runtime probes memory through a pipe of its own, and
      // LeakSanitizer calls prctl when a threaded process exits.
      SCMP_SYS(pipe2), SCMP_SYS(prctl),
#endif
  };
  bool ok = true;
  for (int call : kAllowed) ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, call, 0) == 0;
  auto allow_if = [&](int call, scmp_arg_cmp condition) {
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, call, 1, condition) == 0;
  };
  // Sending on the channel, but no out-of-band data: an OOB byte makes the
  // daemon's poll report data that read() then skips.
  allow_if(SCMP_SYS(sendto), SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_OOB, 0));
  // Limits of itself only (pid 0): another process's limits are not ours
  // to read or change, and every worker is the same nobody.
  allow_if(SCMP_SYS(prlimit64), SCMP_A0(SCMP_CMP_EQ, 0));
  // File-descriptor flags, but not F_SETOWN / F_SETSIG / O_ASYNC, which
  // would have the kernel signal other processes on our behalf.
  for (int command : {F_GETFD, F_SETFD, F_GETFL, F_DUPFD_CLOEXEC}) {
    allow_if(SCMP_SYS(fcntl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(command)));
  }
  ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 2,
                         SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(F_SETFL)),
                         SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0)) == 0;
  // Signals to itself only: abort() and raise() are tgkill on our own pid.
  ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                         SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid()))) == 0;
  size_t count = std::size(kAllowed) + 5;  // sendto, prlimit64, fcntl, tgkill, openat
  if (!have_root) {
    // Without the empty root, opening files would reach the host's own:
    // no openat at all (what the warm-up loaded is all there is).
  } else if (policy.scratch_bytes > 0) {
    // Files in the scratch tmpfs: the only writable place in the root.
    static constexpr int kScratch[] = {SCMP_SYS(openat), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
                                       SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir),
                                       SCMP_SYS(ftruncate), SCMP_SYS(rename), SCMP_SYS(renameat),
                                       SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(umask),
                                       SCMP_SYS(getcwd), SCMP_SYS(access), SCMP_SYS(faccessat),
                                       SCMP_SYS(chmod), SCMP_SYS(fchmod), SCMP_SYS(fchmodat),
                                       SCMP_SYS(statfs), SCMP_SYS(fstatfs)};
    for (int call : kScratch) ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, call, 0) == 0;
    count += std::size(kScratch) - 1;
  } else {
    // Opening for reading only (the root is empty and read-only anyway).
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY)) == 0;
    // Asking whether a file in the root exists: fontconfig checks its
    // files with access(), and a libvips thread may set up text rendering
    // inside the sandbox rather than during the warm-up.
    for (int call : {SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2)}) {
      ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, call, 0) == 0;
    }
    count += 3;
  }
  if (policy.threads) {
    // Threads but not processes: clone only with CLONE_THREAD. clone3
    // passes its flags in memory, where seccomp cannot look, so it answers
    // ENOSYS and glibc falls back to clone.
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) == 0;
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) == 0;
    static constexpr int kThreads[] = {SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
                                       SCMP_SYS(sched_getaffinity), SCMP_SYS(eventfd2)};
    for (int call : kThreads) ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, call, 0) == 0;
    count += std::size(kThreads) + 1;
#if !defined(__SANITIZE_ADDRESS__)  // where prctl is allowed outright
    // GLib names every thread it starts (libvips' workers), on the thread
    // itself: prctl(PR_SET_NAME) and no other prctl.
    allow_if(SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    ++count;
#endif
  }
  if (!have_root) --count;
  if (!ok || seccomp_load(ctx.get()) != 0) {
    layers.Missing("seccomp (loading the filter failed)");
    return false;
  }
  layers.Active("seccomp allow-list (" + std::to_string(count) + " calls)");
  return true;
}

// The filter of a worker that runs programs (see OfficePolicy): what a
// LibreOffice build legitimately needs is too wide and too changeable to
// list (it forks helpers, execs, maps, makes threads, creates files in its
// profile), so everything is allowed except the calls below. Those reach
// kernel attack surface a document converter never needs, or ways out of
// the namespaces, root and limits the other layers set up.
bool InstallDenyList(Layers& layers) {
  std::unique_ptr<void, SeccompRelease> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) {
    layers.Missing("seccomp (seccomp_init)");
    return false;
  }
  static constexpr int kKilled[] = {
      // other processes' memory and execution
      SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
      SCMP_SYS(kcmp), SCMP_SYS(pidfd_getfd),
      // the filesystem view and the namespaces
      SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
      SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount), SCMP_SYS(fspick),
      SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
      SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at), SCMP_SYS(unshare),
      SCMP_SYS(setns),
      // kernel attack surface
      SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl),
      SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(init_module), SCMP_SYS(finit_module),
      SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
      SCMP_SYS(lookup_dcookie), SCMP_SYS(quotactl), SCMP_SYS(iopl), SCMP_SYS(ioperm),
      // the machine's state
      SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct), SCMP_SYS(syslog),
      SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(adjtimex),
      SCMP_SYS(clock_adjtime), SCMP_SYS(sethostname), SCMP_SYS(setdomainname), SCMP_SYS(vhangup),
  };
  bool ok = true;
  for (int call : kKilled) ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, call, 0) == 0;
  // New namespaces through clone's flags; clone3 hides its flags in
  // memory, so it answers ENOSYS and glibc falls back to clone.
  for (scmp_datum_t flag : {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC,
                            CLONE_NEWUTS, CLONE_NEWCGROUP}) {
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) == 0;
  }
  ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) == 0;
  // Typing into the terminal the daemon may have been started from.
  for (scmp_datum_t request : {TIOCSTI, TIOCLINUX}) {
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, SCMP_SYS(ioctl), 1,
                           SCMP_A1(SCMP_CMP_EQ, request)) == 0;
  }
  // Refused, not fatal: libraries probe for these and fall back.
  for (int call : {SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register)}) {
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), call, 0) == 0;
  }
  // AF_UNIX only (LibreOffice's single-instance pipe, glibc's nscd probe);
  // the network namespace is empty anyway.
  for (int call : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
    ok &= seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), call, 1,
                           SCMP_A0(SCMP_CMP_NE, AF_UNIX)) == 0;
  }
  if (!ok || seccomp_load(ctx.get()) != 0) {
    layers.Missing("seccomp (loading the filter failed)");
    return false;
  }
  layers.Active("seccomp deny-list (" + std::to_string(std::size(kKilled)) +
                " calls kill, and clone with namespace flags, TIOCSTI and TIOCLINUX; io_uring refused;"
                " sockets AF_UNIX only)");
  return true;
}

}  // namespace

SandboxPolicy ConverterPolicy(uint64_t memory_bytes) {
  SandboxPolicy policy;
  // iconv loads its charset converters (CP932, EUC-JP-MS, ...) on demand;
  // Poppler opens fonts (through fontconfig) and CMaps (poppler-data) for
  // documents that do not embed theirs, as Japanese PDFs often do not.
  // gdk-pixbuf (BMP, see sanitizers/image/) loads its loader modules.
  policy.readable_paths = {MUGAI_GCONV_DIR,   "/etc/fonts",         "/usr/share/fonts",
                           "/usr/share/fontconfig", "/var/cache/fontconfig", "/usr/share/poppler",
                           MUGAI_LIB_DIR "/gdk-pixbuf-2.0"};
  policy.memory_bytes = memory_bytes;
  // libvips runs every operation on threads of its own. It keeps the ones
  // the warm-up started and hands them out again, but a job that needs one
  // more must not be a violation.
  policy.threads = true;
  return policy;
}

SandboxPolicy ScannerPolicy(const std::string& signatures_dir, uint64_t max_scan_bytes) {
  SandboxPolicy policy;
  policy.readable_paths = {signatures_dir};
  // The official database compiles to about 1.2 GB; threads reserve arenas.
  policy.memory_bytes = uint64_t{8} << 30;
  policy.cpu_seconds = 0;
  policy.open_files = 256;
  // libclamav's temporary files for one scan stay within its total scan
  // size, 4 * max_scan_bytes (see ClamEngine); scans run in parallel.
  policy.scratch_bytes = 8 * max_scan_bytes;
  policy.threads = true;
  return policy;
}

SandboxPolicy OfficePolicy(uint64_t memory_bytes, uint64_t scratch_bytes) {
  SandboxPolicy policy;
  policy.readable_paths = {"/usr/lib/libreoffice", "/usr/share/libreoffice", "/etc/libreoffice",
                           // the dynamic loader, the libraries and their cache (which
                           // names them under /lib, a link to /usr/lib on merged-/usr)
                           MUGAI_LIB_DIR, "/lib/" MUGAI_LIB_ARCH, "/lib64", "/etc/ld.so.cache",
                           // language tags (liblangtag), fonts and fontconfig
                           "/usr/share/liblangtag", "/etc/fonts", "/usr/share/fonts",
                           "/usr/share/fontconfig", "/var/cache/fontconfig"};
  policy.device_paths = {"/dev/null", "/dev/urandom"};
  policy.memory_bytes = memory_bytes;
  policy.open_files = 1024;
  policy.scratch_bytes = scratch_bytes;
  policy.scratch_dir = "/tmp";
  policy.threads = true;
  policy.processes = true;
  // LibreOffice and its helpers with their threads are well under 100.
  policy.max_processes = 256;
  return policy;
}

RootedSandbox EnterRoot(const SandboxPolicy& policy) {
  Layers layers;
  DropRoot(layers);
  bool have_root = false;
  if (Unshare(policy, layers)) {
    have_root = EmptyRoot(policy, layers);
  } else {
    layers.Missing("empty filesystem view (needs the namespaces); no files can be opened at all");
  }
  // Programs that run in the host's filesystem could read any file the
  // worker's user can (and put it into their output): no root, no run.
  if (policy.processes && !have_root) {
    LogError("cannot confine the worker to an empty root; refusing to run programs without it");
    std::_Exit(125);
  }
  return {policy, layers.Done(), have_root};
}

SandboxReport LockDown(RootedSandbox rooted) {
  const SandboxPolicy& policy = rooted.policy;
  Layers layers(std::move(rooted.report));
  Rlimits(policy, layers);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
    layers.Active("no_new_privs");
  } else {
    layers.Missing(ErrnoText("no_new_privs"));
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  DropCapabilities(layers);
  if (!(policy.processes ? InstallDenyList(layers) : InstallSeccomp(policy, rooted.have_root, layers))) {
    LogError("cannot install the seccomp filter; refusing to run a parser without it");
    std::_Exit(125);
  }
  return layers.Done();
}

SandboxReport EnterSandbox(const SandboxPolicy& policy) { return LockDown(EnterRoot(policy)); }

}  // namespace mugai

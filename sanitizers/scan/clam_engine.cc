#include "sanitizers/scan/clam_engine.h"

#include <clamav.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "sanitizers/core/log.h"
#include "sanitizers/scan/official_database.h"

namespace mugai {
namespace {

// libclamav logs to stderr in its own format; route it through ours.
void ForwardClamMessage(enum cl_msg severity, const char*, const char* message, void*) {
  std::string_view text(message ? message : "");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  LogLevel level = severity == CL_MSG_ERROR  ? LogLevel::kError
                   : severity == CL_MSG_WARN ? LogLevel::kWarn
                                             : LogLevel::kInfo;
  Log(level, std::string("libclamav: ") + std::string(text));
}

// cl_init sets up process-wide state and must run once, before any engine.
void InitClamAv() {
  static std::once_flag once;
  std::call_once(once, [] {
    cl_set_clcb_msg(ForwardClamMessage);
    if (cl_error_t rc = cl_init(CL_INIT_DEFAULT); rc != CL_SUCCESS) {
      throw std::runtime_error(std::string("cl_init: ") + cl_strerror(rc));
    }
  });
}

void Check(cl_error_t rc, const char* what) {
  if (rc != CL_SUCCESS) throw std::runtime_error(std::string(what) + ": " + cl_strerror(rc));
}

struct FmapClose {
  void operator()(cl_fmap_t* map) const { cl_fmap_close(map); }
};

// What the callbacks of one scan learn about it, passed to them through
// cl_scanmap_callback's context: the engine is shared by concurrent scans.
//
// The location cannot be "the layer inspected last": a match in a container
// found after its children were scanned (a signature in a zip's comment,
// say) would be blamed on the last child. virus_found names the layer it
// matched in only by the fd of its map, so `open` tracks the layers being
// scanned (pushed by file_inspection, popped by post_scan) and the match
// belongs to the innermost open layer with that fd. The innermost, because
// a layer mapped from its parent's memory shares the parent's fd (-1 for
// content in memory, like the item). libclamav (1.4) does not post every
// layer it inspects (some OLE2 streams), so a layer left open is replaced
// by the next one inspected at its level.
struct ScanTrace {
  struct Layer {
    int fd;
    uint32_t level;
    std::string name;  // as libclamav gave it, "" for none
    std::string path;  // as in ClamVerdict::location
  };
  std::vector<Layer> open;  // outermost first
  bool found = false;
  std::string location;  // of the first match
};

// Appends a layer's name to a location; unnamed layers (decompressed
// streams, the tar of a .tar.gz) are left out rather than shown as a
// placeholder, so the location reads as the names in the archive.
void AppendName(std::string* path, const char* name) {
  if (name == nullptr || *name == '\0') return;
  if (!path->empty()) *path += '/';
  *path += name;
}

// Called before each layer (the item, then everything extracted from it) is
// scanned. Layers are scanned depth first, so a new layer at `level`
// replaces any left open at that level or deeper.
cl_error_t InspectLayer(int fd, const char*, const char** ancestors, size_t, const char* file_name,
                        size_t, const char*, uint32_t level, uint32_t attributes, void* context) {
  auto* trace = static_cast<ScanTrace*>(context);
  while (!trace->open.empty() && trace->open.back().level >= level) trace->open.pop_back();
  // ancestors[] holds the names of all the layers above (ancestors[0] is the
  // item, which has no name), but normalized ones are named after
  // libclamav's temporary files (HTML turned into the mail it encodes, say):
  // meaningless, and different on every scan. Their names are left out, so
  // the path continues the parent's when the open layer one level up is the
  // parent, and is built from ancestors[] only when libclamav did not
  // inspect the parent.
  const ScanTrace::Layer* parent = trace->open.empty() ? nullptr : &trace->open.back();
  std::string path;
  if (parent != nullptr && parent->level + 1 == level &&
      parent->name == (ancestors[level - 1] ? ancestors[level - 1] : "")) {
    path = parent->path;
  } else {
    for (uint32_t i = 1; i < level; ++i) AppendName(&path, ancestors[i]);
  }
  if (level > 0 && !(attributes & LAYER_ATTRIBUTES_NORMALIZED)) AppendName(&path, file_name);
  // Names come from the content: an archive may make them as long as it
  // likes.
  if (path.size() > ClamVerdict::kMaxLocationBytes) path.resize(ClamVerdict::kMaxLocationBytes);
  trace->open.push_back({fd, level, file_name ? file_name : "", std::move(path)});
  return CL_SUCCESS;  // scan it
}

// Called after each layer is scanned.
cl_error_t LayerScanned(int fd, int, const char*, void* context) {
  auto* trace = static_cast<ScanTrace*>(context);
  if (!trace->open.empty() && trace->open.back().fd == fd) trace->open.pop_back();
  return CL_CLEAN;  // keep libclamav's result
}

// Called for a signature match in the layer being scanned, and once at the
// end of the scan, against the item, for a heuristic that nothing stronger
// replaced. No open layer with the fd leaves the location "".
void MatchFound(int fd, const char*, void* context) {
  auto* trace = static_cast<ScanTrace*>(context);
  if (trace->found) return;
  trace->found = true;
  for (auto layer = trace->open.rbegin(); layer != trace->open.rend(); ++layer) {
    if (layer->fd == fd) {
      trace->location = layer->path;
      return;
    }
  }
}

ClamVerdict Verdict(ClamVerdict::Kind kind, std::string signature = "", std::string location = "",
                    std::string error = "") {
  ClamVerdict verdict;
  verdict.kind = kind;
  verdict.signature = std::move(signature);
  verdict.location = std::move(location);
  verdict.error = std::move(error);
  return verdict;
}

}  // namespace

void ClamEngine::EngineFree::operator()(cl_engine* engine) const { cl_engine_free(engine); }

ClamEngine::ClamEngine(std::string directory, uint64_t max_scan_bytes)
    : directory_(std::move(directory)), max_file_bytes_(max_scan_bytes) {
  InitClamAv();
  engine_.reset(cl_engine_new());
  if (!engine_) throw std::runtime_error("cl_engine_new failed");
  // A single file (the item or anything extracted from it) may be as large
  // as an item we accept; an archive may expand to a few times that, as in
  // libclamav's own defaults (100 MB file, 400 MB scan).
  const auto max_file = static_cast<long long>(max_file_bytes_);
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_FILESIZE, max_file), "max file size");
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_SCANSIZE, 4 * max_file), "max scan size");
  // libclamav counts every layer: a .tar.gz is two. 32 lets it go through
  // the pipeline's own [archives] max_depth (8) of those and more, so a
  // match at the bottom of the deepest archive Mugai unpacks is still found
  // (clam_cache_emax.tgz: clam.exe at layer 16).
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_RECURSION, 32), "max recursion");
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_FILES, 10000), "max files");
  Check(cl_load(directory_.c_str(), engine_.get(), &signature_count_, CL_DB_STDOPT),
        ("cl_load " + directory_).c_str());
  if (signature_count_ == 0) throw std::runtime_error("no signatures in " + directory_);
  Check(cl_engine_compile(engine_.get()), "cl_engine_compile");
  // Set once, before any scan: changing an engine in use is not thread-safe.
  cl_engine_set_clcb_file_inspection(engine_.get(), InspectLayer);
  cl_engine_set_clcb_post_scan(engine_.get(), LayerScanned);
  cl_engine_set_clcb_virus_found(engine_.get(), MatchFound);
  test_signatures_only_ = !HoldsOfficialDatabase(directory_);
}

ClamEngine::~ClamEngine() = default;

ClamVerdict ClamEngine::Scan(std::string_view content) const {
  // Nothing can match zero bytes, and libclamav will not map an empty buffer.
  if (content.empty()) return Verdict(ClamVerdict::kClean);
  std::unique_ptr<cl_fmap_t, FmapClose> map(cl_fmap_open_memory(content.data(), content.size()));
  if (!map) return Verdict(ClamVerdict::kError, "", "", "cannot map content");
  cl_scan_options options{};
  options.parse = ~0u;
  options.general = CL_SCAN_GENERAL_HEURISTICS;
  options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
  const char* virname = nullptr;
  unsigned long scanned = 0;
  ScanTrace trace;
  cl_error_t rc =
      cl_scanmap_callback(map.get(), nullptr, &virname, &scanned, engine_.get(), &options, &trace);
  switch (rc) {
    case CL_CLEAN:
      return Verdict(ClamVerdict::kClean);
    case CL_VIRUS:
      // Includes Heuristics.Limits.Exceeded.*: too big or too deep to scan
      // completely is treated as a detection, never as clean. libclamav
      // (1.4) names no signature when the item itself is over the size limit.
      if (virname) return Verdict(ClamVerdict::kDetected, virname, std::move(trace.location));
      return Verdict(ClamVerdict::kDetected,
                     content.size() > max_file_bytes_ ? "Heuristics.Limits.Exceeded.MaxFileSize"
                                                      : "Unnamed.Detection",
                     std::move(trace.location));
    default:
      return Verdict(ClamVerdict::kError, "", "", cl_strerror(rc));
  }
}

SignatureDirectoryWatch::SignatureDirectoryWatch(const std::string& directory)
    : stat_(std::make_unique<cl_stat>()) {
  InitClamAv();
  if (cl_error_t rc = cl_statinidir(directory.c_str(), stat_.get()); rc != CL_SUCCESS) {
    cl_statfree(stat_.get());
    throw std::runtime_error("cannot watch " + directory + ": " + cl_strerror(rc));
  }
}

SignatureDirectoryWatch::~SignatureDirectoryWatch() { cl_statfree(stat_.get()); }

// cl_statchkdir returns 1 on a change and a negative error when it cannot
// tell (the directory vanished, say); both call for a reload attempt.
bool SignatureDirectoryWatch::Changed() const { return cl_statchkdir(stat_.get()) != 0; }

}  // namespace mugai

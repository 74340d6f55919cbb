// The link policy of mail bodies, notices and previews (ApplyLinkPolicy),
// and the administrator's preview in an item's report (PreviewOf), on any
// text a sanitized item can carry. Contracts from links.h and
// item_report.h: kKeep changes nothing; the output stays valid UTF-8;
// defanged or removed text holds no URL, so applying the policy again
// changes nothing; a preview is valid UTF-8 and holds no URL either.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sanitizers/mail/links.h"
#include "sanitizers/pipeline/item_report.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void CheckChanging(const std::string& utf8, mugai::LinkPolicy policy) {
  const mugai::LinkedText once = mugai::ApplyLinkPolicy(utf8, policy);
  FUZZ_ASSERT(mugai::IsValidUtf8(once.text));
  FUZZ_ASSERT(mugai::ApplyLinkPolicy(once.text, mugai::LinkPolicy::kKeep).links == 0);
  const mugai::LinkedText twice = mugai::ApplyLinkPolicy(once.text, policy);
  FUZZ_ASSERT(twice.text == once.text);
  FUZZ_ASSERT(twice.links == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string utf8 = mugai::ToValidUtf8(std::string_view(reinterpret_cast<const char*>(data), size));
  const mugai::LinkedText kept = mugai::ApplyLinkPolicy(utf8, mugai::LinkPolicy::kKeep);
  FUZZ_ASSERT(kept.text == utf8);
  CheckChanging(utf8, mugai::LinkPolicy::kDefang);
  CheckChanging(utf8, mugai::LinkPolicy::kRemove);

  const std::string preview = mugai::PreviewOf(mugai::MakeSafeText(utf8).text);
  FUZZ_ASSERT(mugai::IsValidUtf8(preview));
  FUZZ_ASSERT(mugai::ApplyLinkPolicy(preview, mugai::LinkPolicy::kKeep).links == 0);
  return 0;
}

// Trusted side: what happens to the links in a text a reader will see. A
// mail body is plain text once sanitized, but a mail reader still makes
// every URL in it clickable; defanging ("hxxps://evil[.]example/") keeps
// the address readable and copyable by hand, but not one click away.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mugai {

enum class LinkPolicy { kKeep, kDefang, kRemove };

struct LinkedText {
  std::string text;
  size_t links = 0;  // URLs found (and, unless kKeep, changed)
};

// The URLs recognised: a scheme http://, https://, ftp:// or ftps:// (any
// case, anywhere, as a reader would link "xhttp://…"), or "www." (any case)
// at the start of a word (after the text's start or any byte other than an
// ASCII letter, digit, ".", "-", "_" or "@"; Japanese text right before it
// counts as a boundary). A URL runs up to the first ASCII space or control
// character, quote (" or '), angle bracket or non-ASCII byte, so
// "<https://x.example/a>" and "https://a.example/x。次" give the URL alone;
// then sentence punctuation at its end (. , ; : ! ?) is left out, and so is
// a closing ) or ] that the URL did not open. A prefix with nothing after
// it ("http://", "www.") is not a link.
//
// kDefang rewrites the scheme (http→hxxp, https→hxxps, ftp→fxp, ftps→fxps,
// keeping each letter's case: HTTP→HXXP) and every "." of the authority —
// userinfo and host, up to the first "/", "?" or "#"; a port has none — as
// "[.]" (a "[.]" already there stays); URLs nested in the path or query
// ("?next=http://…") are defanged the same way. Defanged text holds no URL,
// so applying kDefang twice gives what applying it once does.
// kRemove puts "[URL削除 / link removed]" in the URL's place (equally
// idempotent). kKeep changes nothing. Every policy counts the URLs found
// (nested ones not separately). Input must be valid UTF-8; the output then
// is too, since only ASCII runs are ever rewritten.
LinkedText ApplyLinkPolicy(std::string_view utf8, LinkPolicy policy);

}  // namespace mugai

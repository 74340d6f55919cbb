#include "sanitizers/mail/links.h"

#include <algorithm>
#include <array>
#include <optional>

#include "sanitizers/core/ascii.h"

namespace mugai {
namespace {

constexpr std::string_view kRemoved = "[URL削除 / link removed]";

// Longer schemes first: "https://" must not be taken for "http" + "s://".
constexpr std::array<std::string_view, 4> kSchemes = {"https://", "http://", "ftps://", "ftp://"};

bool IsAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool StartsWithIgnoreCase(std::string_view text, size_t pos, std::string_view lower_prefix) {
  if (text.size() - pos < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    if (AsciiLower(text[pos + i]) != lower_prefix[i]) return false;
  }
  return true;
}

// Where a URL stops. Non-ASCII bytes end it too, so a URL is always whole
// ASCII and cutting around it never splits a UTF-8 sequence.
bool EndsUrl(unsigned char c) { return c <= 0x20 || c >= 0x7F || c == '"' || c == '\'' || c == '<' || c == '>'; }

// "www." counts only at the start of a word. Japanese text has no spaces,
// so any non-ASCII byte before it is a word boundary; a letter, digit or
// one of ".-_@" is not ("mail.www.example", "user@www.example").
bool IsWordStart(std::string_view text, size_t pos) {
  if (pos == 0) return true;
  unsigned char prev = text[pos - 1];
  return !IsAsciiAlnum(prev) && prev != '.' && prev != '-' && prev != '_' && prev != '@';
}

// What starts a URL: a scheme with its "://" (anywhere, as a reader that
// makes "xhttp://…" clickable would), or "www." at the start of a word.
struct Prefix {
  size_t pos = 0;
  size_t length = 0;
  bool www = false;
};

std::optional<Prefix> FindPrefix(std::string_view text, size_t from) {
  for (size_t pos = from; pos < text.size(); ++pos) {
    char first = AsciiLower(text[pos]);
    if (first != 'h' && first != 'f' && first != 'w') continue;
    for (std::string_view scheme : kSchemes) {
      if (StartsWithIgnoreCase(text, pos, scheme)) return Prefix{pos, scheme.size(), false};
    }
    if (StartsWithIgnoreCase(text, pos, "www.") && IsWordStart(text, pos)) return Prefix{pos, 4, true};
  }
  return std::nullopt;
}

// Punctuation that ends a sentence is not part of the URL before it, but a
// closing bracket is kept when the URL opened it
// ("https://ja.wikipedia.org/wiki/Foo_(bar)"). Counts are kept as it goes,
// so a long run of ")" costs linear time.
size_t TrimTrailingPunctuation(std::string_view url, size_t min_length) {
  const auto opened_parens = std::count(url.begin(), url.end(), '(');
  const auto opened_brackets = std::count(url.begin(), url.end(), '[');
  auto closed_parens = std::count(url.begin(), url.end(), ')');
  auto closed_brackets = std::count(url.begin(), url.end(), ']');
  size_t end = url.size();
  for (; end > min_length; --end) {
    char last = url[end - 1];
    if (last == ')') {
      if (closed_parens <= opened_parens) break;
      --closed_parens;
    } else if (last == ']') {
      if (closed_brackets <= opened_brackets) break;
      --closed_brackets;
    } else if (std::string_view(".,;:!?").find(last) == std::string_view::npos) {
      break;
    }
  }
  return end;
}

struct UrlMatch {
  size_t begin = 0;
  size_t end = 0;
};

std::optional<UrlMatch> FindUrl(std::string_view text, size_t from) {
  while (std::optional<Prefix> prefix = FindPrefix(text, from)) {
    size_t raw_end = prefix->pos + prefix->length;
    while (raw_end < text.size() && !EndsUrl(text[raw_end])) ++raw_end;
    size_t length = TrimTrailingPunctuation(text.substr(prefix->pos, raw_end - prefix->pos), prefix->length);
    if (length > prefix->length) return UrlMatch{prefix->pos, prefix->pos + length};
    // A bare "http://" or "www." leads nowhere, so it is no link. Only
    // punctuation followed it, and no prefix starts with punctuation.
    from = raw_end;
  }
  return std::nullopt;
}

// http→hxxp, ftp→fxp, keeping the case of each letter.
void AppendDefangedScheme(std::string_view scheme, std::string& out) {
  for (char c : scheme) out += c == 't' ? 'x' : c == 'T' ? 'X' : c;
}

// Every dot of the authority, userinfo included: a dotted name left there
// ("https://www.bank.example@evil.example/") could still be made a link by
// a reader. A dot already written "[.]" stays as it is.
void AppendDefangedAuthority(std::string_view authority, std::string& out) {
  for (size_t i = 0; i < authority.size(); ++i) {
    bool bracketed = i > 0 && authority[i - 1] == '[' && i + 1 < authority.size() && authority[i + 1] == ']';
    if (authority[i] == '.' && !bracketed) {
      out += "[.]";
    } else {
      out += authority[i];
    }
  }
}

// Defangs the URL and every URL nested in it ("…/login?next=http://…"),
// which would otherwise stay clickable and make a second pass change the
// text again. An authority ends at "/", "?", "#" or where a nested URL
// starts ("http://a.http://b"). One pass over the URL, without recursion:
// the nesting depth is the sender's to choose.
void AppendDefanged(std::string_view url, std::string& out) {
  size_t pos = 0;
  std::optional<Prefix> next = FindPrefix(url, 0);
  while (next) {
    out.append(url.substr(pos, next->pos - pos));
    size_t head_end = next->pos + next->length;
    if (!next->www) AppendDefangedScheme(url.substr(next->pos, next->length), out);
    std::optional<Prefix> following = FindPrefix(url, head_end);
    size_t limit = following ? following->pos : url.size();
    size_t authority_end = std::min(url.substr(0, limit).find_first_of("/?#", head_end), limit);
    size_t authority_begin = next->www ? next->pos : head_end;
    AppendDefangedAuthority(url.substr(authority_begin, authority_end - authority_begin), out);
    pos = authority_end;
    next = following;
  }
  out.append(url.substr(pos));
}

}  // namespace

LinkedText ApplyLinkPolicy(std::string_view utf8, LinkPolicy policy) {
  LinkedText result;
  result.text.reserve(utf8.size());
  size_t pos = 0;
  while (std::optional<UrlMatch> url = FindUrl(utf8, pos)) {
    result.text.append(utf8.substr(pos, url->begin - pos));
    std::string_view link = utf8.substr(url->begin, url->end - url->begin);
    switch (policy) {
      case LinkPolicy::kKeep: result.text.append(link); break;
      case LinkPolicy::kDefang: AppendDefanged(link, result.text); break;
      case LinkPolicy::kRemove: result.text.append(kRemoved); break;
    }
    ++result.links;
    pos = url->end;
  }
  result.text.append(utf8.substr(pos));
  return result;
}

}  // namespace mugai

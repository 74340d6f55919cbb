#include "sanitizers/html/html_converter.h"

#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <array>
#include <climits>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sanitizers/core/ascii.h"
#include "sanitizers/text/text_converter.h"

namespace mugai {
namespace {

struct DocFreer {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using UniqueDoc = std::unique_ptr<xmlDoc, DocFreer>;

struct ParserFreer {
  void operator()(htmlParserCtxt* parser) const { htmlFreeParserCtxt(parser); }
};
using UniqueParser = std::unique_ptr<htmlParserCtxt, ParserFreer>;

struct XmlStringFreer {
  void operator()(xmlChar* s) const { xmlFree(s); }
};
using UniqueXmlString = std::unique_ptr<xmlChar, XmlStringFreer>;

// Recover from any markup, never touch the network, keep libxml2's reports
// off the worker's stderr, and let no <meta> switch the charset: the text
// handed over is already UTF-8. Not HTML_PARSE_NOBLANKS: it drops the space
// in "<b>a</b> <i>b</i>".
constexpr int kParseOptions =
    HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_IGNORE_ENC;

// How far into a document to look for its <meta charset>.
constexpr size_t kPrescanBytes = 8192;

constexpr std::string_view kSpaces = " \t\n\r\f";  // HTML's ASCII whitespace

std::string_view AsView(const xmlChar* s) { return s ? reinterpret_cast<const char*>(s) : ""; }

// The URL of a link as shown to the reader, or "" when it is not worth
// showing. Only absolute http, https, ftp and mailto URLs are: a javascript:,
// vbscript: or data: URL is code or noise rather than a place, and a
// relative one means nothing outside its page. As in browsers, surrounding
// spaces and controls and any tab or newline inside are not part of the URL,
// so "java\nscript:" is recognised for what it is.
std::string ShownUrl(std::string_view href) {
  std::string url;
  for (char c : href) {
    if (c != '\t' && c != '\n' && c != '\r') url += c;
  }
  auto is_space_or_control = [](char c) { return static_cast<unsigned char>(c) <= 0x20; };
  while (!url.empty() && is_space_or_control(url.back())) url.pop_back();
  url.erase(url.begin(), std::ranges::find_if_not(url, is_space_or_control));
  size_t colon = url.find(':');
  if (colon == std::string::npos) return {};
  constexpr std::array<std::string_view, 4> kShown = {"http", "https", "ftp", "mailto"};
  if (std::ranges::find(kShown, AsciiLower(url.substr(0, colon))) == kShown.end()) return {};
  return url;
}

// The host of an absolute URL with an authority ("https://user@Host:443/"
// gives "host"), lower-cased, without a final dot; "" for any other URL.
// Browsers read a backslash after the host as a slash.
std::string UrlHost(std::string_view url) {
  size_t colon = url.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view rest = url.substr(colon + 1);
  if (!rest.starts_with("//")) return {};
  std::string_view authority = rest.substr(2, rest.find_first_of("/?#\\", 2) - 2);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (authority.starts_with('[')) {
    authority = authority.substr(0, authority.find(']') + 1);
  } else if (size_t port = authority.rfind(':'); port != std::string_view::npos) {
    authority = authority.substr(0, port);
  }
  while (authority.ends_with('.')) authority.remove_suffix(1);
  return AsciiLower(authority);
}

// What a link text with a final dot-separated word like "pdf" usually is:
// a file's name, not a host's.
bool IsFileExtension(std::string_view word) {
  static constexpr std::array<std::string_view, 22> kExtensions = {
      "pdf", "doc",  "docx", "xls", "xlsx", "ppt", "pptx", "txt", "csv",  "htm", "html",
      "jpg", "jpeg", "png",  "gif", "zip",  "lzh", "exe",  "xml", "json", "eml", "msg"};
  return std::ranges::find(kExtensions, word) != kExtensions.end();
}

// "bank.example", "mail.bank.co.jp": labels of letters, digits and hyphens
// (or non-ASCII, for internationalised names), the last all letters.
bool LooksLikeDomain(std::string_view host) {
  size_t dot = host.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string_view top = host.substr(dot + 1);
  auto letter = [](char c) { return g_ascii_isalpha(c); };
  if (top.size() < 2 || !std::ranges::all_of(top, letter) || IsFileExtension(top)) return false;
  auto domain_char = [](char c) { return g_ascii_isalnum(c) || c == '-' || (c & 0x80) != 0; };
  for (size_t begin = 0;;) {
    size_t end = std::min(host.find('.', begin), host.size());
    std::string_view label = host.substr(begin, end - begin);
    if (label.empty() || !std::ranges::all_of(label, domain_char)) return false;
    if (end == host.size()) return true;
    begin = end + 1;
  }
}

// The host a link text shows ("https://bank.example/login",
// "www.bank.example", "bank.example/login"), lower-cased, or "" when the
// text is not a URL or host name by itself.
std::string ShownHost(std::string_view text) {
  if (text.empty() || text.find_first_of(kSpaces) != std::string_view::npos) return {};
  std::string lower = AsciiLower(text);
  if (lower.starts_with("http://") || lower.starts_with("https://")) return UrlHost(lower);
  std::string_view host = std::string_view(lower).substr(0, lower.find_first_of("/?#:"));
  while (host.ends_with('.')) host.remove_suffix(1);
  if (!host.starts_with("www.") && !LooksLikeDomain(host)) return {};
  return std::string(host);
}

// Whether a link that shows `shown` and leads to `target` goes where it
// says: the same host, or one within the shown domain.
bool SameSite(std::string_view shown, std::string_view target) {
  auto strip_www = [](std::string_view host) { return host.starts_with("www.") ? host.substr(4) : host; };
  shown = strip_www(shown);
  target = strip_www(target);
  return target == shown || (target.ends_with(shown) && target[target.size() - shown.size() - 1] == '.');
}

enum class Kind {
  kInline,     // b, span, unknown elements: their text flows on
  kSkip,       // not content: nothing inside is shown
  kLine,       // a block on lines of its own
  kParagraph,  // a block with a blank line around it
  kBreak,      // br
  kList,       // ul, ol
  kItem,       // li: "- " after the list's indent
  kCell,       // td, th: " | " after the previous cell of the row
  kPre,        // whitespace is kept inside
  kLink,       // a: "text <url>"
  kImage,      // img: "[image: alt]"
};

// libxml2's HTML parser lower-cases element names.
Kind KindOf(const xmlNode* element) {
  static const std::unordered_map<std::string_view, Kind> kKinds = [] {
    std::unordered_map<std::string_view, Kind> kinds;
    auto add = [&kinds](Kind kind, std::initializer_list<std::string_view> names) {
      for (std::string_view name : names) kinds.emplace(name, kind);
    };
    // Code, styling, metadata, and embedded content a reader cannot see
    // without running or rendering it. <title> is shown from <head> only.
    add(Kind::kSkip, {"script", "style", "noscript", "template", "head", "title", "iframe", "object", "embed",
                      "applet", "svg", "math", "canvas", "audio", "video"});
    add(Kind::kParagraph, {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr", "dl"});
    add(Kind::kLine,
        {"div",     "tr",      "dt",      "dd",      "section",  "article", "header", "footer",
         "nav",     "aside",   "main",    "form",    "fieldset", "legend",  "figure", "figcaption",
         "address", "caption", "details", "summary", "center",   "option"});
    add(Kind::kBreak, {"br"});
    add(Kind::kList, {"ul", "ol"});
    add(Kind::kItem, {"li"});
    add(Kind::kCell, {"td", "th"});
    add(Kind::kPre, {"pre", "xmp", "listing", "plaintext"});
    add(Kind::kLink, {"a"});
    add(Kind::kImage, {"img"});
    return kinds;
  }();
  auto it = kKinds.find(AsView(element->name));
  return it == kKinds.end() ? Kind::kInline : it->second;
}

bool IsElement(const xmlNode* node, std::string_view name) {
  return node->type == XML_ELEMENT_NODE && AsView(node->name) == name;
}

const xmlNode* ChildElement(const xmlNode* parent, std::string_view name) {
  if (parent == nullptr) return nullptr;
  for (const xmlNode* child = parent->children; child; child = child->next) {
    if (IsElement(child, name)) return child;
  }
  return nullptr;
}

std::string Attribute(const xmlNode* element, const char* name) {
  UniqueXmlString value(xmlGetProp(element, reinterpret_cast<const xmlChar*>(name)));
  return std::string(AsView(value.get()));
}

// Text laid out the way a browser would, reduced to lines: each run of
// whitespace is one space, blocks start new lines, there is at most one
// blank line in a row, and nothing blank at either end.
class Layout {
 public:
  // Collapses whitespace.
  void Text(std::string_view text) {
    while (!text.empty()) {
      size_t word = text.find_first_not_of(kSpaces);
      if (word != 0) space_ = true;
      if (word == std::string_view::npos) return;
      text.remove_prefix(word);
      size_t end = std::min(text.find_first_of(kSpaces), text.size());
      Raw(text.substr(0, end));
      text.remove_prefix(end);
    }
  }

  void Raw(std::string_view text) {
    Flush();
    out_ += text;
  }

  // Writes `text` right after what came before, one space apart, leaving any
  // whitespace or break that was pending for what follows.
  void Attach(std::string_view text) {
    int breaks = std::exchange(breaks_, 0);
    bool space = std::exchange(space_, true);
    Raw(text);
    breaks_ = breaks;
    space_ = space;
  }

  // Writes `prefix` (a list bullet) before the next text, after any breaks,
  // so that a block inside the item does not part it from its bullet.
  void Prefix(std::string prefix) { prefix_ = std::move(prefix); }

  void Break(int lines) { breaks_ = std::max(breaks_, lines); }
  void LineBreak() { ++breaks_; }
  void DropSpace() { space_ = false; }

  size_t size() const { return out_.size(); }
  std::string_view Since(size_t position) const {
    return std::string_view(out_).substr(std::min(position, out_.size()));
  }

  std::string Finish() && {
    out_.erase(out_.find_last_not_of(kSpaces) + 1);  // npos + 1 == 0: all blank
    out_.erase(0, out_.find_first_not_of('\n'));
    return std::move(out_);
  }

 private:
  // Writes the pending whitespace before more text.
  void Flush() {
    if (breaks_ > 0 && !out_.empty()) {
      while (!out_.empty() && out_.back() == ' ') out_.pop_back();
      int have = out_.ends_with("\n\n") ? 2 : out_.ends_with('\n') ? 1 : 0;
      out_.append(std::max(std::min(breaks_, 2) - have, 0), '\n');
    } else if (space_ && !out_.empty() && kSpaces.find(out_.back()) == std::string_view::npos) {
      out_ += ' ';
    }
    out_ += prefix_;
    prefix_.clear();
    breaks_ = 0;
    space_ = false;
  }

  std::string out_;
  std::string prefix_;
  int breaks_ = 0;  // line breaks wanted before the next text
  bool space_ = false;
};

class HtmlRenderer {
 public:
  RenderedHtml Render(const xmlNode* root) && {
    if (const xmlNode* title = ChildElement(ChildElement(root, "head"), "title")) {
      UniqueXmlString text(xmlNodeGetContent(title));
      layout_.Text(AsView(text.get()));
      layout_.Break(2);
    }
    // Iterative, so no nesting depth can exhaust the stack.
    const xmlNode* node = root;
    for (;;) {
      if (Enter(node) && node->children) {
        node = node->children;
        continue;
      }
      for (;;) {
        Leave(node);
        if (node == root) return {std::move(layout_).Finish(), std::move(deceptive_links_)};
        if (node->next) {
          node = node->next;
          break;
        }
        node = node->parent;
      }
    }
  }

 private:
  struct Link {
    size_t start;  // where its text begins in the layout
    std::string url;
  };

  void Text(std::string_view text) {
    if (preformatted_ > 0) {
      layout_.Raw(text);
    } else {
      layout_.Text(text);
    }
  }

  // Returns whether to visit the children. Comments, processing
  // instructions and the like are never shown.
  bool Enter(const xmlNode* node) {
    // libxml2 keeps what raw-text elements hold as CDATA sections.
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
      std::string_view text = AsView(node->content);
      // As in browsers, a newline right after <pre> is not content.
      if (node->prev == nullptr && node->parent && IsElement(node->parent, "pre") && text.starts_with('\n')) {
        text.remove_prefix(1);
      }
      Text(text);
      return false;
    }
    if (node->type != XML_ELEMENT_NODE) return false;
    switch (KindOf(node)) {
      case Kind::kInline:
        break;
      case Kind::kSkip:
        return false;
      case Kind::kLine:
        layout_.Break(1);
        break;
      case Kind::kParagraph:
        layout_.Break(2);
        break;
      case Kind::kBreak:
        layout_.LineBreak();
        break;
      case Kind::kList:
        layout_.Break(lists_ == 0 ? 2 : 1);
        ++lists_;
        break;
      case Kind::kItem:
        layout_.Break(1);
        layout_.Prefix(std::string(2 * std::max(lists_ - 1, 0), ' ') + "- ");
        break;
      case Kind::kCell:
        if (FollowsCell(node)) {
          layout_.DropSpace();
          layout_.Raw(" | ");
        }
        break;
      case Kind::kPre:
        layout_.Break(2);
        ++preformatted_;
        break;
      case Kind::kLink:
        links_.push_back({layout_.size(), ShownUrl(Attribute(node, "href"))});
        break;
      case Kind::kImage: {
        std::string alt(Trim(Attribute(node, "alt"), kSpaces));
        Text(alt.empty() ? "[image]" : "[image: " + alt + "]");
        break;
      }
    }
    return true;
  }

  void Leave(const xmlNode* node) {
    if (node->type != XML_ELEMENT_NODE) return;
    switch (KindOf(node)) {
      case Kind::kLine:
      case Kind::kItem:
        layout_.Break(1);
        break;
      case Kind::kParagraph:
        layout_.Break(2);
        break;
      case Kind::kList:
        --lists_;
        layout_.Break(lists_ == 0 ? 2 : 1);
        break;
      case Kind::kPre:
        --preformatted_;
        layout_.Break(2);
        break;
      case Kind::kLink:
        EndLink();
        break;
      default:
        break;
    }
  }

  // "text <url>"; just the text when it already is the URL.
  void EndLink() {
    Link link = std::move(links_.back());
    links_.pop_back();
    std::string_view text = Trim(layout_.Since(link.start), kSpaces);
    NoteIfDeceptive(text, link.url);
    if (link.url.empty() || text == link.url) return;
    if (text.empty()) {
      layout_.Raw("<" + link.url + ">");
    } else {
      layout_.Attach("<" + link.url + ">");
    }
  }

  void NoteIfDeceptive(std::string_view text, const std::string& url) {
    std::string shown = ShownHost(text);
    if (shown.empty()) return;
    std::string target = UrlHost(url);
    if (target.empty() || SameSite(shown, target)) return;
    deceptive_links_.push_back({std::string(text), url});
  }

  static bool FollowsCell(const xmlNode* cell) {
    for (const xmlNode* node = cell->prev; node; node = node->prev) {
      if (node->type == XML_ELEMENT_NODE) return IsElement(node, "td") || IsElement(node, "th");
    }
    return false;
  }

  Layout layout_;
  std::vector<Link> links_;
  std::vector<DeceptiveLink> deceptive_links_;
  int lists_ = 0;         // open ul and ol
  int preformatted_ = 0;  // open pre and the like
};

void InitLibxml() {
  // Once per process, before any parse. Never undone with
  // xmlCleanupParser(): its state is process-wide, and the worker simply
  // exits.
  static std::once_flag once;
  std::call_once(once, xmlInitParser);
}

}  // namespace

std::string HtmlToText(std::string_view html) {
  return RenderUtf8Html(DecodeToUtf8(html, HtmlMetaCharset(html)).utf8).text;
}

RenderedHtml RenderUtf8Html(std::string_view utf8) {
  if (utf8.empty()) return {};  // libxml2 makes no document of nothing
  if (utf8.size() > INT_MAX) throw ConvertError("HTML document too large for libxml2");
  InitLibxml();
  UniqueParser parser(htmlNewParserCtxt());
  if (!parser) throw std::bad_alloc();
  UniqueDoc doc(htmlCtxtReadMemory(parser.get(), utf8.data(), static_cast<int>(utf8.size()), nullptr, "UTF-8",
                                   kParseOptions));
  // Past one of its limits (elements nested more than 256 deep, say)
  // libxml2 stops and keeps what it had so far; that must not pass for the
  // whole document.
  if (parser->disableSAX) {
    throw ConvertError("libxml2 gave up part way through the HTML document (nested too deep or too large)");
  }
  if (!doc) throw ConvertError("libxml2 could not parse the HTML document");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  return root ? HtmlRenderer().Render(root) : RenderedHtml();
}

// <meta charset=X>, or <meta http-equiv=Content-Type content="text/html;
// charset=X">. A document whose <meta> reads as ASCII cannot be UTF-16,
// whatever it says (and a BOM, which real UTF-16 has, wins anyway).
std::string HtmlMetaCharset(std::string_view html) {
  std::string head = AsciiLower(html.substr(0, kPrescanBytes));
  std::string_view view = head;
  for (size_t at = view.find("<meta"); at != std::string_view::npos; at = view.find("<meta", at + 1)) {
    std::string_view tag = view.substr(at, view.find('>', at) - at);
    if (tag.size() < 6 || (kSpaces.find(tag[5]) == std::string_view::npos && tag[5] != '/')) continue;
    size_t name = tag.find("charset");
    if (name == std::string_view::npos) continue;
    std::string_view value = Trim(tag.substr(name + 7), kSpaces);
    if (!value.starts_with('=')) continue;
    value = Trim(value.substr(1), kSpaces);
    if (value.starts_with('"') || value.starts_with('\'')) value.remove_prefix(1);
    std::string label(value.substr(0, value.find_first_of("\"'; \t\n\r\f/")));
    if (label.starts_with("utf-16")) return "utf-8";
    if (!label.empty()) return label;
  }
  return {};
}

void HtmlConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  EmitText(input, HtmlToText(input.content), sink);
}

}  // namespace mugai

// SPDX-License-Identifier: Apache-2.0
// Internal: Prometheus text exposition (format 0.0.4), for
// Runtime::metrics_text and TenantRegistry::metrics_text. Each family gets
// its # HELP and # TYPE lines, then its samples, together. Label values are
// escaped as the format asks (backslash, double quote, line feed) and made
// valid UTF-8 (a byte that is not: U+FFFD), whatever a caller put in them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

namespace megaring::detail {

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 if it is not one.
inline size_t utf8_sequence(const std::string& s, size_t i) {
  const auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};  // no overlong forms
  if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// A label value (or HELP text, where `quote` is false) as the format wants it.
inline std::string prometheus_escape(const std::string& value, bool quote = true) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (c == '\\') { out += "\\\\"; ++i; continue; }
    if (c == '\n') { out += "\\n"; ++i; continue; }
    if (c == '"' && quote) { out += "\\\""; ++i; continue; }
    const size_t n = utf8_sequence(value, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(value, i, n);
      i += n;
    }
  }
  return out;
}

class PrometheusText {
 public:
  // Starts a family: `name` is ours (a valid metric name), `type` "counter"
  // or "gauge".
  void family(const char* name, const char* type, const char* help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    text_ += prometheus_escape(help, false);
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
  }
  // `labels` from labels() or "".
  void sample(const char* name, const std::string& labels, uint64_t value) {
    line(name, labels, std::to_string(value));
  }
  void sample_double(const char* name, const std::string& labels, double value) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.9g", value);
    line(name, labels, buf);
  }
  // {k1="v1",k2="v2"}: names are ours, values escaped.
  static std::string labels(std::initializer_list<std::pair<const char*, std::string>> pairs) {
    std::string out = "{";
    bool first = true;
    for (const auto& p : pairs) {
      if (!first) out += ',';
      first = false;
      out += p.first;
      out += "=\"";
      out += prometheus_escape(p.second);
      out += '"';
    }
    return out + "}";
  }
  std::string& text() { return text_; }

 private:
  void line(const char* name, const std::string& labels, const std::string& value) {
    text_ += name;
    text_ += labels;
    text_ += ' ';
    text_ += value;
    text_ += '\n';
  }
  std::string text_;
};

}  // namespace megaring::detail

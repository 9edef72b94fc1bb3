// SPDX-License-Identifier: Apache-2.0
// A small parser of Prometheus text exposition (format 0.0.4) for the
// tests: # HELP and # TYPE before a family's samples, a family's samples
// together, metric and label names of the allowed characters, label values
// with only the three escapes (\\, \", \n), a number after them, no sample
// twice. Samples are kept by name and "k=v,k=v" (values unescaped).
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace megaring_test {

struct Metrics {
  std::map<std::string, std::string> types;  // family -> counter / gauge
  std::map<std::pair<std::string, std::string>, double> samples;
  std::string error;

  double value(const std::string& name, const std::string& labels) const {
    auto it = samples.find({name, labels});
    return it == samples.end() ? std::nan("") : it->second;
  }
  std::string type(const std::string& name) const {
    auto it = types.find(name);
    return it == types.end() ? "" : it->second;
  }
  size_t samples_of(const std::string& name) const {
    size_t n = 0;
    for (const auto& s : samples) n += s.first.first == name ? 1 : 0;
    return n;
  }
};

inline bool metric_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Parses `text` into *m; false with m->error on the first violation.
inline bool parse_metrics(const std::string& text, Metrics* m) {
  *m = Metrics{};
  std::set<std::string> closed;  // families whose samples ended
  std::string current;           // the family being sampled
  size_t pos = 0;
  int line_no = 0;
  const auto fail = [&](const std::string& why) {
    m->error = "line " + std::to_string(line_no) + ": " + why;
    return false;
  };
  if (!text.empty() && text.back() != '\n') return fail("no final line feed");
  while (pos < text.size()) {
    ++line_no;
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool is_type = line[2] == 'T';
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) return fail("comment without text");
      const std::string name = rest.substr(0, sp);
      for (size_t i = 0; i < name.size(); ++i)
        if (!metric_name_char(name[i], i == 0)) return fail("bad metric name " + name);
      if (closed.count(name) || name == current) return fail("family " + name + " declared again or late");
      if (is_type) {
        const std::string type = rest.substr(sp + 1);
        if (type != "counter" && type != "gauge") return fail("type " + type);
        if (m->types.count(name)) return fail("second TYPE for " + name);
        m->types[name] = type;
      }
      continue;
    }
    if (!line.empty() && line[0] == '#') continue;  // other comments
    size_t i = 0;
    while (i < line.size() && metric_name_char(line[i], i == 0)) ++i;
    const std::string name = line.substr(0, i);
    if (name.empty()) return fail("no metric name");
    if (!m->types.count(name)) return fail("sample before TYPE: " + name);
    if (name != current) {
      if (closed.count(name)) return fail("family " + name + " split");
      if (!current.empty()) closed.insert(current);
      current = name;
    }
    std::string key;
    if (i < line.size() && line[i] == '{') {
      ++i;
      bool first = true;
      while (i < line.size() && line[i] != '}') {
        if (!first) {
          if (line[i] != ',') return fail("expected ,");
          ++i;
        }
        first = false;
        const size_t ls = i;
        while (i < line.size() && metric_name_char(line[i], i == ls)) ++i;
        const std::string label = line.substr(ls, i - ls);
        if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
          return fail("bad label");
        i += 2;
        std::string value;
        for (;;) {
          if (i >= line.size()) return fail("unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c != '\\') {
            value += c;
            continue;
          }
          if (i >= line.size()) return fail("escape at the end");
          const char e = line[i++];
          if (e == '\\') value += '\\';
          else if (e == '"') value += '"';
          else if (e == 'n') value += '\n';
          else return fail(std::string("bad escape \\") + e);
        }
        key += (key.empty() ? "" : ",") + label + "=" + value;
      }
      if (i >= line.size()) return fail("unterminated labels");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return fail("no space before the value");
    const std::string number = line.substr(i + 1);
    char* stop = nullptr;
    const double v = std::strtod(number.c_str(), &stop);
    if (number.empty() || stop != number.c_str() + number.size()) return fail("bad value " + number);
    if (!m->samples.emplace(std::make_pair(name, key), v).second) return fail("duplicate sample");
  }
  return true;
}

}  // namespace megaring_test

// SPDX-License-Identifier: Apache-2.0
// megaring_bench: shared pieces of the harness (no CUDA here): a tiny JSON
// value, latency/throughput summaries computed from raw samples, and the
// record every arm fills in.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mrbench {

using Clock = std::chrono::steady_clock;

inline double elapsed_ns(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// ---------------------------------------------------------------------------
// JSON: just enough to write the report (objects keep insertion order).
// ---------------------------------------------------------------------------
class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::kBool), bool_(b) {}
  Json(double d) : type_(Type::kNumber), num_(d) {}
  Json(int v) : type_(Type::kNumber), num_(v) {}
  Json(unsigned v) : type_(Type::kNumber), num_(v) {}
  Json(long v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}
  Json(unsigned long v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}
  Json(long long v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}
  Json(unsigned long long v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}
  Json(const char* s) : type_(Type::kString), str_(s) {}
  Json(std::string s) : type_(Type::kString), str_(std::move(s)) {}

  static Json object() {
    Json j;
    j.type_ = Type::kObject;
    return j;
  }
  static Json array() {
    Json j;
    j.type_ = Type::kArray;
    return j;
  }

  // Object member (creates the object / member on first use).
  Json& operator[](const std::string& key) {
    if (type_ == Type::kNull) type_ = Type::kObject;
    for (auto& kv : members_)
      if (kv.first == key) return kv.second;
    members_.emplace_back(key, Json());
    return members_.back().second;
  }
  const Json* find(const std::string& key) const {
    for (auto& kv : members_)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  void push_back(Json v) {
    if (type_ == Type::kNull) type_ = Type::kArray;
    items_.push_back(std::move(v));
  }
  Type type() const { return type_; }
  double number() const { return num_; }
  const std::string& str() const { return str_; }
  bool boolean() const { return bool_; }

  std::string dump(int indent = 2) const {
    std::string out;
    write(out, indent, 0);
    out += '\n';
    return out;
  }

 private:
  static void escape(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  }
  void write(std::string& out, int indent, int depth) const {
    const std::string pad(static_cast<size_t>(indent * (depth + 1)), ' ');
    const std::string pad_end(static_cast<size_t>(indent * depth), ' ');
    switch (type_) {
      case Type::kNull: out += "null"; break;
      case Type::kBool: out += bool_ ? "true" : "false"; break;
      case Type::kNumber: {
        if (!std::isfinite(num_)) {
          out += "null";  // JSON has no inf/nan
        } else if (num_ == std::floor(num_) && std::fabs(num_) < 9e15) {
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%.0f", num_);
          out += buf;
        } else {
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%.6g", num_);
          out += buf;
        }
        break;
      }
      case Type::kString: escape(out, str_); break;
      case Type::kArray: {
        // Arrays of numbers (and of small number arrays) stay on one line.
        bool flat = true;
        for (auto& v : items_)
          if (v.type_ == Type::kObject ||
              (v.type_ == Type::kArray && v.items_.size() > 4))
            flat = false;
        out += '[';
        for (size_t i = 0; i < items_.size(); ++i) {
          if (i) out += flat ? ", " : ",";
          if (!flat) out += "\n" + pad;
          items_[i].write(out, indent, depth + 1);
        }
        if (!flat && !items_.empty()) out += "\n" + pad_end;
        out += ']';
        break;
      }
      case Type::kObject: {
        out += '{';
        for (size_t i = 0; i < members_.size(); ++i) {
          if (i) out += ',';
          out += "\n" + pad;
          escape(out, members_[i].first);
          out += ": ";
          members_[i].second.write(out, indent, depth + 1);
        }
        if (!members_.empty()) out += "\n" + pad_end;
        out += '}';
        break;
      }
    }
  }

  Type type_ = Type::kNull;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

// ---------------------------------------------------------------------------
// Summaries from raw samples.
// ---------------------------------------------------------------------------
struct LatencyStats {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
  std::vector<std::pair<double, double>> quantiles;  // (q, ns) for plots
};

// Nearest-rank percentile of sorted samples.
inline double percentile_sorted(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(v.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  if (i >= v.size()) i = v.size() - 1;
  return v[i];
}

inline LatencyStats summarize(std::vector<double> ns) {
  LatencyStats s;
  s.n = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  s.min = ns.front();
  s.max = ns.back();
  s.p50 = percentile_sorted(ns, 0.50);
  s.p90 = percentile_sorted(ns, 0.90);
  s.p99 = percentile_sorted(ns, 0.99);
  s.p999 = percentile_sorted(ns, 0.999);
  double sum = 0;
  for (double x : ns) sum += x;
  s.mean = sum / static_cast<double>(ns.size());
  std::vector<double> qs;
  for (int i = 0; i <= 100; ++i) qs.push_back(i / 100.0);
  for (double q : {0.995, 0.998, 0.999, 0.9995, 0.9999}) qs.push_back(q);
  std::sort(qs.begin(), qs.end());
  for (double q : qs) s.quantiles.emplace_back(q, q == 0 ? s.min : percentile_sorted(ns, q));
  return s;
}

inline Json to_json(const LatencyStats& s) {
  Json j = Json::object();
  j["n"] = static_cast<unsigned long long>(s.n);
  j["min_ns"] = s.min;
  j["p50_ns"] = s.p50;
  j["p90_ns"] = s.p90;
  j["p99_ns"] = s.p99;
  j["p999_ns"] = s.p999;
  j["max_ns"] = s.max;
  j["mean_ns"] = s.mean;
  Json q = Json::array();
  for (auto& [qq, v] : s.quantiles) {
    Json pair = Json::array();
    pair.push_back(qq);
    pair.push_back(v);
    q.push_back(std::move(pair));
  }
  j["quantiles"] = std::move(q);
  return j;
}

// Throughput trials (items per second), with their spread.
struct RateStats {
  size_t trials = 0;
  double min = 0, median = 0, max = 0;
  std::vector<double> values;
};

inline RateStats summarize_rates(std::vector<double> r) {
  RateStats s;
  s.values = r;
  s.trials = r.size();
  if (r.empty()) return s;
  std::sort(r.begin(), r.end());
  s.min = r.front();
  s.max = r.back();
  s.median = r.size() % 2 ? r[r.size() / 2] : 0.5 * (r[r.size() / 2 - 1] + r[r.size() / 2]);
  return s;
}

// A list of numbers as a JSON array.
inline Json to_json(const std::vector<double>& values) {
  Json v = Json::array();
  for (double x : values) v.push_back(x);
  return v;
}

inline Json to_json(const RateStats& s, const char* unit) {
  Json j = Json::object();
  j["unit"] = unit;
  j["trials"] = static_cast<unsigned long long>(s.trials);
  j["median"] = s.median;
  j["min"] = s.min;
  j["max"] = s.max;
  j["values"] = to_json(s.values);
  return j;
}

// ---------------------------------------------------------------------------
// One arm's result.
// ---------------------------------------------------------------------------
struct Arm {
  std::string name;    // e.g. "rt.megaring_call"
  std::string group;   // round_trip, throughput, scaling, interference, host_cost
  std::string label;   // one line for the table
  std::string status = "ok";  // ok | skipped | error
  std::string reason;         // why skipped / what failed
  Json params = Json::object();
  bool has_latency = false;
  LatencyStats latency;
  bool has_rate = false;
  RateStats rate;
  std::string rate_unit = "items/s";
  Json extra = Json::object();

  Json to_json_value() const {
    Json j = Json::object();
    j["name"] = name;
    j["group"] = group;
    j["label"] = label;
    j["status"] = status;
    if (!reason.empty()) j["reason"] = reason;
    j["params"] = params;
    if (has_latency) j["latency"] = to_json(latency);
    if (has_rate) j["rate"] = to_json(rate, rate_unit.c_str());
    j["extra"] = extra;
    return j;
  }
};

// A target from the issue: pass / miss / n/a with the ratio that decided it.
struct Target {
  std::string name;
  std::string requirement;  // human text, e.g. "p50 <= 1.5x floor"
  std::string status = "n/a";
  double ratio = NAN;       // the measured ratio (NaN when not measured)
  double threshold = NAN;
  std::string detail;
};

}  // namespace mrbench

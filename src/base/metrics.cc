#include "base/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/check.h"

namespace raftkv::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double d) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       (allow_colon && c == ':');
    if (alpha || (i > 0 && c >= '0' && c <= '9')) continue;
    return false;
  }
  return true;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` (or "" without labels); `extra` appends one more pair (le).
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values,
                       std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

void write_sample(std::string& out, const std::string& name, std::string_view suffix,
            const std::string& labels, const std::string& value) {
  out += name;
  out += suffix;
  out += labels;
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

void Gauge::add(double d) { atomic_add(value_, d); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    RAFTKV_CHECK(std::isfinite(bounds_[i]));
    RAFTKV_CHECK(i == 0 || bounds_[i - 1] < bounds_[i]);
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // Bucket i holds bounds_[i-1] < v <= bounds_[i] (Prometheus' "le").
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                       bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  RAFTKV_CHECK(start > 0 && factor > 1 && count >= 1);
  std::vector<double> b;
  b.reserve(static_cast<size_t>(count));
  double v = start;
  for (int i = 0; i < count; ++i) {
    b.push_back(v);
    v *= factor;
  }
  return b;
}

template <typename T>
T& Family<T>::with(const std::vector<std::string>& values) {
  RAFTKV_CHECK(values.size() == label_names_.size());
  std::lock_guard lk(mu_);
  auto it = series_.find(values);
  if (it == series_.end()) {
    std::unique_ptr<T> s;
    if constexpr (std::is_same_v<T, Histogram>) {
      s = std::make_unique<T>(bounds_);
    } else {
      s = std::make_unique<T>();
    }
    it = series_.emplace(values, std::move(s)).first;
  }
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry& Registry::global() {
  static Registry* r = new Registry();  // never destroyed: used until exit
  return *r;
}

Registry::Entry& Registry::entry(const std::string& name, const std::string& help, Type type,
                                 const std::vector<std::string>& label_names,
                                 const std::vector<double>& bounds) {
  RAFTKV_CHECK_MSG(valid_name(name, true), ("bad metric name: " + name).c_str());
  for (const std::string& l : label_names) {
    RAFTKV_CHECK_MSG(valid_name(l, false) && l != "le", ("bad label name: " + l).c_str());
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    RAFTKV_CHECK_MSG(it->second.type == type && it->second.label_names == label_names &&
                         it->second.bounds == bounds && !it->second.callback,
                     ("metric registered twice with different shapes: " + name).c_str());
    return it->second;
  }
  Entry e;
  e.type = type;
  e.help = help;
  e.label_names = label_names;
  e.bounds = bounds;
  return entries_.emplace(name, std::move(e)).first->second;
}

Family<Counter>& Registry::counter_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  std::lock_guard lk(mu_);
  Entry& e = entry(name, help, Type::kCounter, label_names, {});
  if (!e.family) e.family.reset(new Family<Counter>(std::move(label_names), {}));
  return *static_cast<Family<Counter>*>(e.family.get());
}

Family<Gauge>& Registry::gauge_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lk(mu_);
  Entry& e = entry(name, help, Type::kGauge, label_names, {});
  if (!e.family) e.family.reset(new Family<Gauge>(std::move(label_names), {}));
  return *static_cast<Family<Gauge>*>(e.family.get());
}

Family<Histogram>& Registry::histogram_family(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> bounds) {
  std::lock_guard lk(mu_);
  Entry& e = entry(name, help, Type::kHistogram, label_names, bounds);
  if (!e.family) {
    // Validates the bounds once, here, rather than on the first series.
    Histogram probe(bounds);
    e.family.reset(new Family<Histogram>(std::move(label_names), std::move(bounds)));
  }
  return *static_cast<Family<Histogram>*>(e.family.get());
}

void Registry::set_callback(const std::string& name, const std::string& help, Type type,
                            std::function<double()> fn) {
  RAFTKV_CHECK(type != Type::kHistogram);
  RAFTKV_CHECK_MSG(valid_name(name, true), ("bad metric name: " + name).c_str());
  std::lock_guard lk(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    RAFTKV_CHECK_MSG(!it->second.family && it->second.type == type,
                     ("metric registered twice with different shapes: " + name).c_str());
    it->second.callback = std::move(fn);
    return;
  }
  Entry e;
  e.type = type;
  e.help = help;
  e.callback = std::move(fn);
  entries_.emplace(name, std::move(e));
}

std::string Registry::expose() const {
  std::string out;
  std::lock_guard lk(mu_);
  for (const auto& [name, e] : entries_) {
    if (!e.family && !e.callback) continue;
    out += "# HELP " + name + " " + escape_help(e.help) + "\n";
    out += "# TYPE " + name + " " + type_name(e.type) + "\n";
    if (e.callback) {
      write_sample(out, name, "", "", format_value(e.callback()));
      continue;
    }
    if (e.type == Type::kCounter) {
      const auto& f = *static_cast<const Family<Counter>*>(e.family.get());
      std::lock_guard fl(f.mu_);
      for (const auto& [values, c] : f.series_) {
        write_sample(out, name, "", label_text(f.label_names_, values),
               std::to_string(c->value()));
      }
    } else if (e.type == Type::kGauge) {
      const auto& f = *static_cast<const Family<Gauge>*>(e.family.get());
      std::lock_guard fl(f.mu_);
      for (const auto& [values, g] : f.series_) {
        write_sample(out, name, "", label_text(f.label_names_, values), format_value(g->value()));
      }
    } else {
      const auto& f = *static_cast<const Family<Histogram>*>(e.family.get());
      std::lock_guard fl(f.mu_);
      for (const auto& [values, h] : f.series_) {
        const std::vector<uint64_t> cum = h->cumulative_counts();
        for (size_t i = 0; i < h->bounds().size(); ++i) {
          write_sample(out, name, "_bucket",
                 label_text(f.label_names_, values, "le", format_value(h->bounds()[i])),
                 std::to_string(cum[i]));
        }
        write_sample(out, name, "_bucket", label_text(f.label_names_, values, "le", "+Inf"),
               std::to_string(cum.back()));
        const std::string labels = label_text(f.label_names_, values);
        write_sample(out, name, "_sum", labels, format_value(h->sum()));
        write_sample(out, name, "_count", labels, std::to_string(cum.back()));
      }
    }
  }
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace raftkv::metrics

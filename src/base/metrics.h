// Metrics: counters, gauges and histograms with labels, and their exposition
// in the Prometheus text format (version 0.0.4), for /metrics
// (docs/operations.md "Monitoring").
//
// Hot path: once a caller holds a Counter&, Gauge& or Histogram& (look it up
// once, keep the reference), recording is a few relaxed atomic operations —
// no lock, no allocation. Looking a labelled series up (Family::with) takes
// the family's mutex and may allocate: do it once per series, not per event.
// Series live as long as their registry (references stay valid).
//
// Layering: standard library only, so any layer may count — except the Raft
// core, which stays pure; the server measures around it.
//
// Exposition order is deterministic: families by name, series by label values
// (in the family's label-name order), histogram buckets by bound.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace raftkv::metrics {

/// A monotonically increasing count. Any thread.
class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down. Any thread.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Observations counted into fixed buckets (upper bounds, ascending; +Inf is
/// implicit), with their sum. Any thread.
class Histogram {
 public:
  /// REQUIRES: `bounds` strictly ascending and finite.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  /// Count of observations <= bounds()[i] (cumulative), i in [0, bounds().size()];
  /// the last entry is the +Inf bucket, i.e. the total count.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  ///< Per bucket, not cumulative; +Inf last.
  std::atomic<double> sum_{0};
};

/// `count` bounds: start, start*factor, start*factor^2, ... (as Prometheus'
/// ExponentialBuckets, which etcd uses). REQUIRES: start > 0, factor > 1, count >= 1.
std::vector<double> exponential_buckets(double start, double factor, int count);

enum class Type { kCounter, kGauge, kHistogram };

/// One metric name with its series, one per combination of label values.
template <typename T>
class Family {
 public:
  /// The series with these label values (one per label name, same order),
  /// created on first use. REQUIRES: values.size() == label_names().size().
  T& with(const std::vector<std::string>& values);
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class Registry;
  Family(std::vector<std::string> label_names, std::vector<double> bounds)
      : label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  ///< Histograms only.
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// The process-wide registry /metrics exposes.
  static Registry& global();

  /// Registers (or finds, when already registered with the same type and
  /// labels) a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*; label
  /// names [a-zA-Z_][a-zA-Z0-9_]* and not "le" (reserved for buckets).
  /// Registering a name again with another type or other labels aborts (a bug).
  Family<Counter>& counter_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  Family<Gauge>& gauge_family(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names);
  Family<Histogram>& histogram_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds);

  /// Unlabelled shorthands.
  Counter& counter(const std::string& name, const std::string& help) {
    return counter_family(name, help, {}).with({});
  }
  Gauge& gauge(const std::string& name, const std::string& help) {
    return gauge_family(name, help, {}).with({});
  }
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds) {
    return histogram_family(name, help, {}, std::move(bounds)).with({});
  }

  /// An unlabelled series whose value `fn` computes at exposition time (the
  /// size of a store, the process's memory). `type` is kCounter or kGauge.
  /// Setting it again replaces the function; an empty function removes the
  /// series from the exposition. `fn` runs on the exposing thread, under the
  /// registry's lock: it must be quick and must not use this registry.
  void set_callback(const std::string& name, const std::string& help, Type type,
                    std::function<double()> fn);

  /// The whole registry in the Prometheus text format.
  std::string expose() const;

 private:
  struct Entry {
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> bounds;
    std::shared_ptr<void> family;    ///< Family<Counter|Gauge|Histogram>, or null for a callback.
    std::function<double()> callback;
  };
  Entry& entry(const std::string& name, const std::string& help, Type type,
               const std::vector<std::string>& label_names, const std::vector<double>& bounds);

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// Exposition helpers (exposed for tests).
/// A label value with \ " and newline escaped.
std::string escape_label_value(std::string_view v);
/// A HELP text with \ and newline escaped.
std::string escape_help(std::string_view v);
/// A sample value: the shortest text that reads back exactly; +Inf, -Inf, NaN.
std::string format_value(double v);

}  // namespace raftkv::metrics

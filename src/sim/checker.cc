#include "sim/checker.h"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "base/check.h"

namespace raftkv::sim {

namespace {

std::string show(const Value& v) { return v ? "\"" + *v + "\"" : "<none>"; }

}  // namespace

std::string describe(const Op& op) {
  std::string s = "op " + std::to_string(op.id) + " client " + std::to_string(op.client) + " ";
  switch (op.kind) {
    case OpKind::kPut:
      s += "put(" + op.key + ", \"" + op.value + "\"";
      if (op.lease != 0) s += ", lease " + std::to_string(op.lease);
      s += ")";
      break;
    case OpKind::kGet: s += "get(" + op.key + ")"; break;
    case OpKind::kDelete:
      s += op.lease != 0
               ? "revoke of lease " + std::to_string(op.lease) + " deletes(" + op.key + ")"
               : "delete(" + op.key + ")";
      break;
    case OpKind::kCas:
      s += "cas(" + op.key + ", " + show(op.expected) + " -> \"" + op.value + "\")";
      break;
  }
  s += " [" + std::to_string(op.invoke_us) + "us, ";
  if (op.indeterminate) {
    s += "?] indeterminate";
    return s;
  }
  s += std::to_string(op.complete_us) + "us] -> ";
  switch (op.kind) {
    case OpKind::kPut: s += (op.lease == 0 || op.ok) ? "ok" : "lease not found"; break;
    case OpKind::kGet: s += show(op.read); break;
    case OpKind::kDelete: s += op.ok ? "deleted" : "nothing deleted"; break;
    case OpKind::kCas: s += op.ok ? "succeeded" : "failed"; break;
  }
  return s;
}

bool model_step(const Op& op, Value& state) {
  switch (op.kind) {
    case OpKind::kPut:
      // A put whose lease did not exist was refused: no effect (whether that
      // refusal was right is the lease checker's question).
      if (op.lease != 0 && !op.indeterminate && !op.ok) return true;
      state = op.value;
      return true;
    case OpKind::kGet:
      return op.indeterminate || state == op.read;
    case OpKind::kDelete:
      if (!op.indeterminate && op.ok != state.has_value()) return false;
      state.reset();
      return true;
    case OpKind::kCas: {
      const bool holds = state == op.expected;
      if (!op.indeterminate && op.ok != holds) return false;
      if (holds) state = op.value;
      return true;
    }
  }
  return false;
}

namespace {

// One key's search. Entries form a doubly linked list in time order; index 0
// is the head sentinel and `kEnd` the end.
class KeySearch {
 public:
  KeySearch(std::vector<const Op*> ops, Value initial) : ops_(std::move(ops)), state_(std::move(initial)) {
    struct Ev {
      uint64_t t;
      int is_return;  // calls sort before returns at the same instant: concurrent
      int op;
    };
    std::vector<Ev> evs;
    for (size_t i = 0; i < ops_.size(); ++i) {
      evs.push_back({ops_[i]->invoke_us, 0, static_cast<int>(i)});
      if (!ops_[i]->indeterminate) evs.push_back({ops_[i]->complete_us, 1, static_cast<int>(i)});
    }
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
      if (a.t != b.t) return a.t < b.t;
      if (a.is_return != b.is_return) return a.is_return < b.is_return;
      return a.op < b.op;
    });
    const int n = static_cast<int>(evs.size());
    end_ = n + 1;
    nodes_.resize(static_cast<size_t>(n + 2));
    std::vector<int> call_of(ops_.size(), -1);
    for (int i = 0; i < n; ++i) {
      Node& nd = nodes_[static_cast<size_t>(i + 1)];
      nd.is_call = evs[static_cast<size_t>(i)].is_return == 0;
      nd.op = evs[static_cast<size_t>(i)].op;
      if (nd.is_call) {
        call_of[static_cast<size_t>(nd.op)] = i + 1;
      } else {
        nodes_[static_cast<size_t>(call_of[static_cast<size_t>(nd.op)])].match = i + 1;
      }
    }
    for (int i = 0; i <= n; ++i) {
      nodes_[static_cast<size_t>(i)].next = i + 1;
      nodes_[static_cast<size_t>(i + 1)].prev = i;
    }
    linearized_.assign((ops_.size() + 7) / 8, '\0');
  }

  CheckResult::Verdict run(uint64_t max_steps, uint64_t* steps) {
    int entry = nodes_[0].next;
    std::vector<std::pair<int, Value>> stack;
    while (nodes_[0].next != end_) {
      if (++*steps > max_steps) return CheckResult::Verdict::kGaveUp;
      if (entry == end_) break;  // only calls of indeterminate ops remain: they never happened
      const Node& nd = nodes_[static_cast<size_t>(entry)];
      if (nd.is_call) {
        Value next = state_;
        const Op& op = *ops_[static_cast<size_t>(nd.op)];
        if (model_step(op, next)) {
          set_bit(nd.op, true);
          if (cache_.insert(cache_key(next)).second) {
            stack.emplace_back(entry, state_);
            state_ = std::move(next);
            lift(entry);
            entry = nodes_[0].next;
            continue;
          }
          set_bit(nd.op, false);
        }
        entry = nd.next;
      } else {
        if (stack.empty()) return CheckResult::Verdict::kViolation;
        auto [e, prev_state] = std::move(stack.back());
        stack.pop_back();
        state_ = std::move(prev_state);
        set_bit(nodes_[static_cast<size_t>(e)].op, false);
        unlift(e);
        entry = nodes_[static_cast<size_t>(e)].next;
      }
    }
    return CheckResult::Verdict::kLinearizable;
  }

 private:
  struct Node {
    bool is_call = false;
    int op = -1;
    int match = -1;  ///< Call: its return entry, or -1 (indeterminate).
    int prev = 0;
    int next = 0;
  };

  void set_bit(int op, bool on) {
    auto& byte = linearized_[static_cast<size_t>(op / 8)];
    const char mask = static_cast<char>(1 << (op % 8));
    byte = on ? static_cast<char>(byte | mask) : static_cast<char>(byte & ~mask);
  }
  std::string cache_key(const Value& s) const {
    std::string k = linearized_;
    if (s) {
      k.push_back('\1');
      k += *s;
    } else {
      k.push_back('\0');
    }
    return k;
  }
  void unlink(int i) {
    Node& nd = nodes_[static_cast<size_t>(i)];
    nodes_[static_cast<size_t>(nd.prev)].next = nd.next;
    nodes_[static_cast<size_t>(nd.next)].prev = nd.prev;
  }
  void relink(int i) {
    Node& nd = nodes_[static_cast<size_t>(i)];
    nodes_[static_cast<size_t>(nd.prev)].next = i;
    nodes_[static_cast<size_t>(nd.next)].prev = i;
  }
  void lift(int call) {
    unlink(call);
    if (nodes_[static_cast<size_t>(call)].match >= 0) unlink(nodes_[static_cast<size_t>(call)].match);
  }
  void unlift(int call) {
    if (nodes_[static_cast<size_t>(call)].match >= 0) relink(nodes_[static_cast<size_t>(call)].match);
    relink(call);
  }

  std::vector<const Op*> ops_;
  Value state_;
  std::vector<Node> nodes_;
  int end_ = 0;
  std::string linearized_;
  std::unordered_set<std::string> cache_;
};

}  // namespace

CheckResult check_linearizable(const std::vector<Op>& ops, const CheckOptions& options) {
  std::map<std::string, std::vector<const Op*>> by_key;  // ordered: deterministic reports
  for (const Op& op : ops) {
    if (op.kind == OpKind::kGet && op.indeterminate) continue;  // a lost read changes nothing
    RAFTKV_CHECK_MSG(op.indeterminate || op.complete_us >= op.invoke_us,
                     "history: an operation completed before it was invoked");
    by_key[op.key].push_back(&op);
  }
  CheckResult result;
  for (auto& [key, key_ops] : by_key) {
    KeySearch search(key_ops, options.initial);
    uint64_t steps = 0;
    const CheckResult::Verdict v = search.run(options.max_steps_per_key, &steps);
    result.steps += steps;
    if (v == CheckResult::Verdict::kLinearizable) continue;
    result.verdict = v;
    result.key = key;
    std::vector<const Op*> sorted = key_ops;
    std::sort(sorted.begin(), sorted.end(),
              [](const Op* a, const Op* b) { return a->invoke_us < b->invoke_us || (a->invoke_us == b->invoke_us && a->id < b->id); });
    for (const Op* op : sorted) result.detail += "  " + describe(*op) + "\n";
    if (v == CheckResult::Verdict::kViolation) return result;
  }
  return result;
}

}  // namespace raftkv::sim

// The RocksDB layout of kv::Store (one column family; first byte = kind):
//
//   'r' | main (8, big-endian) | sub (8, big-endian)  ->  record
//        record = kind (1: 'p' put, 't' tombstone) | mvccpb.KeyValue (protobuf)
//        A tombstone's KeyValue holds only the key.
//   'm' | name                                         ->  meta value
//        "applied_index", "revision", "compact_rev", "physical_compact_rev"
//        (8 bytes big-endian each), "format" ("raftkv-kv/1", written last by
//        a restore so an unfinished restore is detectable), "alarms" (the
//        active alarms as an etcdserverpb.AlarmResponse; absent = none).
//   'l' | lease id (8, big-endian)                     ->  etcdserverpb.LeaseGrantRequest
//   'a' | 'u' or 'r' | name                            ->  auth user / role (kv/auth_store.h)
//
// Big-endian revisions make RocksDB's byte order the revision order, so one
// forward scan of 'r' replays history in order (index rebuild, HashKV).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace raftkv::kv::keys {

inline constexpr char kRevPrefix = 'r';
inline constexpr char kMetaPrefix = 'm';
inline constexpr char kLeasePrefix = 'l';
inline constexpr size_t kRevKeyBytes = 17;
inline constexpr char kPutRecord = 'p';
inline constexpr char kTombstoneRecord = 't';
inline constexpr std::string_view kFormat = "raftkv-kv/1";

inline void put_be64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline uint64_t get_be64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return v;
}

inline std::string rev_key(int64_t main, uint64_t sub) {
  std::string k;
  k.reserve(kRevKeyBytes);
  k.push_back(kRevPrefix);
  put_be64(&k, static_cast<uint64_t>(main));
  put_be64(&k, sub);
  return k;
}
inline bool is_rev_key(std::string_view k) {
  return k.size() == kRevKeyBytes && k[0] == kRevPrefix;
}
inline int64_t rev_main(std::string_view k) {
  return static_cast<int64_t>(get_be64(k.substr(1)));
}
inline uint64_t rev_sub(std::string_view k) {
  return get_be64(k.substr(9));
}

inline std::string meta_key(std::string_view name) {
  std::string k(1, kMetaPrefix);
  k.append(name);
  return k;
}
inline std::string u64_value(uint64_t v) {
  std::string s;
  put_be64(&s, v);
  return s;
}

inline std::string lease_key(int64_t id) {
  std::string k(1, kLeasePrefix);
  put_be64(&k, static_cast<uint64_t>(id));
  return k;
}

inline constexpr std::string_view kAppliedIndex = "applied_index";
inline constexpr std::string_view kRevision = "revision";
inline constexpr std::string_view kCompactRev = "compact_rev";
inline constexpr std::string_view kPhysicalCompactRev = "physical_compact_rev";
inline constexpr std::string_view kFormatName = "format";
inline constexpr std::string_view kAlarms = "alarms";  ///< etcdserverpb.AlarmResponse

}  // namespace raftkv::kv::keys

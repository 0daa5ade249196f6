#include "storage/wal_format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "storage/crc32c.h"

namespace raftkv::storage {

void put_u16(std::string* out, uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out->append(b, 2);
}
void put_u32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
void put_u64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
uint16_t get_u16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
uint32_t get_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}
uint64_t get_u64(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

void append_record(std::string* out, RecordType type, uint32_t batch, bool batch_end,
                   std::string_view part1, std::string_view part2) {
  const uint64_t n = part1.size() + part2.size();
  const size_t start = out->size();
  put_u32(out, 0);  // crc, filled below
  put_u32(out, static_cast<uint32_t>(n));
  put_u32(out, batch);
  out->push_back(static_cast<char>(type));
  out->push_back(static_cast<char>(batch_end ? kFlagBatchEnd : 0));
  put_u16(out, 0);
  out->append(part1);
  out->append(part2);
  uint32_t crc = crc32c(out->data() + start + 4, kRecordHeaderBytes - 4 + n);
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>(crc >> (8 * i));
  out->resize(start + record_bytes(n), '\0');
}

void append_entry_record(std::string* out, const raft::Entry& e, uint32_t batch, bool batch_end) {
  std::string head;
  head.reserve(17);
  put_u64(&head, e.term.value());
  put_u64(&head, e.index.value());
  head.push_back(static_cast<char>(e.type));
  append_record(out, RecordType::kEntry, batch, batch_end, head, e.data);
}

void append_hard_state_record(std::string* out, const raft::HardState& hs, uint32_t batch,
                              bool batch_end) {
  std::string p;
  put_u64(&p, hs.term.value());
  put_u64(&p, hs.vote.value());
  put_u64(&p, hs.commit.value());
  append_record(out, RecordType::kHardState, batch, batch_end, p);
}

void append_marker_record(std::string* out, const SnapshotMarker& m, uint32_t batch,
                          bool batch_end) {
  std::string p;
  put_u64(&p, m.index.value());
  put_u64(&p, m.term.value());
  append_record(out, RecordType::kSnapshotMarker, batch, batch_end, p);
}

void append_segment_header_record(std::string* out, const SegmentHeader& h, uint32_t batch,
                                  bool batch_end) {
  std::string p;
  put_u32(&p, kSegmentMagic);
  put_u16(&p, h.version);
  put_u16(&p, 0);
  put_u64(&p, h.seq);
  put_u64(&p, h.first_index.value());
  append_record(out, RecordType::kSegmentHeader, batch, batch_end, p);
}

DecodeOutcome decode_record(std::string_view buf, uint64_t offset, RecordView* out,
                            std::string* why) {
  if (buf.size() - offset < kRecordHeaderBytes) {
    const bool zero = std::all_of(buf.begin() + static_cast<ptrdiff_t>(offset), buf.end(),
                                  [](char c) { return c == 0; });
    return zero ? DecodeOutcome::kZero : DecodeOutcome::kTruncated;
  }
  const char* h = buf.data() + offset;
  static constexpr char kZeros[kRecordHeaderBytes] = {};
  if (std::memcmp(h, kZeros, kRecordHeaderBytes) == 0) return DecodeOutcome::kZero;
  const uint32_t crc = get_u32(h);
  const uint32_t len = get_u32(h + 4);
  const uint8_t type = static_cast<uint8_t>(h[12]);
  const uint8_t flags = static_cast<uint8_t>(h[13]);
  char msg[160];
  if (type < 1 || type > 4) {
    std::snprintf(msg, sizeof msg, "record type %u is not one of 1..4", type);
    *why = msg;
    return DecodeOutcome::kInvalid;
  }
  if ((flags & ~kFlagBatchEnd) != 0 || get_u16(h + 14) != 0) {
    std::snprintf(msg, sizeof msg, "reserved header bits set (flags 0x%02x, reserved 0x%04x)",
                  flags, get_u16(h + 14));
    *why = msg;
    return DecodeOutcome::kInvalid;
  }
  if (len > kMaxRecordPayloadBytes) {
    std::snprintf(msg, sizeof msg, "record length %u exceeds the limit %u", len,
                  kMaxRecordPayloadBytes);
    *why = msg;
    return DecodeOutcome::kInvalid;
  }
  const uint64_t total = record_bytes(len);
  if (buf.size() - offset < total) {
    std::snprintf(msg, sizeof msg,
                  "record length %u runs past the end of the file (%llu bytes left)", len,
                  static_cast<unsigned long long>(buf.size() - offset));
    *why = msg;
    return DecodeOutcome::kTruncated;
  }
  const uint32_t actual = crc32c(h + 4, kRecordHeaderBytes - 4 + len);
  if (actual != crc) {
    std::snprintf(msg, sizeof msg,
                  "checksum mismatch: expected crc32c 0x%08x (stored), found 0x%08x", crc, actual);
    *why = msg;
    return DecodeOutcome::kInvalid;
  }
  for (uint64_t i = kRecordHeaderBytes + len; i < total; ++i) {
    if (h[i] != 0) {
      *why = "non-zero padding after the record";
      return DecodeOutcome::kInvalid;
    }
  }
  out->type = static_cast<RecordType>(type);
  out->flags = flags;
  out->batch = get_u32(h + 8);
  out->payload = std::string_view(h + kRecordHeaderBytes, len);
  out->offset = offset;
  out->size_bytes = total;
  return DecodeOutcome::kRecord;
}

namespace {
Status bad_payload(const char* what, size_t got) {
  return Status::corruption(std::string(what) + " payload has " + std::to_string(got) +
                            " bytes, which is not a valid size");
}
}  // namespace

Result<std::pair<raft::Index, raft::Term>> decode_entry_id(std::string_view p) {
  if (p.size() < 17) return bad_payload("entry", p.size());
  const uint8_t type = static_cast<uint8_t>(p[16]);
  if (type > 1) return Status::corruption("entry type " + std::to_string(type) + " is unknown");
  const raft::Index index(get_u64(p.data() + 8));
  if (index == raft::Index{}) return Status::corruption("entry with index 0");
  return std::make_pair(index, raft::Term(get_u64(p.data())));
}

Result<raft::Entry> decode_entry(std::string_view p) {
  Result<std::pair<raft::Index, raft::Term>> id = decode_entry_id(p);
  if (!id) return id.status();
  raft::Entry e;
  e.index = id->first;
  e.term = id->second;
  e.type = static_cast<raft::EntryType>(p[16]);
  e.data.assign(p.substr(17));
  return e;
}

Result<raft::HardState> decode_hard_state(std::string_view p) {
  if (p.size() != 24) return bad_payload("hard state", p.size());
  raft::HardState hs;
  hs.term = raft::Term(get_u64(p.data()));
  hs.vote = raft::NodeId(get_u64(p.data() + 8));
  hs.commit = raft::Index(get_u64(p.data() + 16));
  return hs;
}

Result<SnapshotMarker> decode_marker(std::string_view p) {
  if (p.size() != 16) return bad_payload("snapshot marker", p.size());
  return SnapshotMarker{raft::Index(get_u64(p.data())), raft::Term(get_u64(p.data() + 8))};
}

Result<SegmentHeader> decode_segment_header(std::string_view p) {
  if (p.size() != 24) return bad_payload("segment header", p.size());
  if (get_u32(p.data()) != kSegmentMagic) {
    return Status::corruption("segment header magic is wrong (not a raftkv WAL segment)");
  }
  SegmentHeader h;
  h.version = get_u16(p.data() + 4);
  if (h.version != kWalFormatVersion) {
    return Status::corruption("WAL format version " + std::to_string(h.version) +
                              " is not supported; this build reads version " +
                              std::to_string(kWalFormatVersion));
  }
  h.seq = get_u64(p.data() + 8);
  h.first_index = raft::Index(get_u64(p.data() + 16));
  return h;
}

std::string segment_file_name(uint64_t seq, raft::Index first_index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016llx-%016llx.wal", static_cast<unsigned long long>(seq),
                static_cast<unsigned long long>(first_index.value()));
  return buf;
}

bool parse_hex_u64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 16) return false;
  *v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    *v = (*v << 4) | static_cast<uint64_t>(d);
  }
  return true;
}

bool parse_segment_file_name(std::string_view name, uint64_t* seq, raft::Index* first_index) {
  if (name.size() != 37 || name[16] != '-' || name.substr(33) != ".wal") return false;
  uint64_t idx = 0;
  if (!parse_hex_u64(name.substr(0, 16), seq) || !parse_hex_u64(name.substr(17, 16), &idx)) {
    return false;
  }
  *first_index = raft::Index(idx);
  return true;
}

}  // namespace raftkv::storage

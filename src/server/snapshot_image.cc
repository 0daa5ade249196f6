#include "server/snapshot_image.h"

#include <cstring>

namespace raftkv::server {
namespace {

constexpr std::string_view kMagic = "RKVIMG01";
constexpr uint32_t kMaxFrameBytes = 64u << 20;

void put_u32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
bool get_u32(std::string_view* b, uint32_t* v) {
  if (b->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v |= uint32_t(uint8_t((*b)[i])) << (8 * i);
  b->remove_prefix(4);
  return true;
}

}  // namespace

Status write_snapshot_image(const MemberTable& members, kv::SnapshotStream& stream,
                            const ImageSink& sink) {
  std::string head(kMagic);
  const std::string table = encode_member_table(members);
  put_u32(&head, static_cast<uint32_t>(table.size()));
  head += table;
  RAFTKV_RETURN_IF_ERROR(sink(head));
  // Bounded by the store's size: each chunk is ~1 MiB of it.
  for (;;) {
    Result<std::optional<std::string>> c = stream.next_chunk();
    if (!c) return c.status();
    if (!c->has_value()) break;
    const std::string& chunk = **c;
    if (chunk.empty() || chunk.size() > kMaxFrameBytes) {
      return Status::internal("snapshot image: kv chunk of " + std::to_string(chunk.size()) +
                              " bytes cannot be framed");
    }
    std::string len;
    put_u32(&len, static_cast<uint32_t>(chunk.size()));
    RAFTKV_RETURN_IF_ERROR(sink(len));
    RAFTKV_RETURN_IF_ERROR(sink(chunk));
  }
  std::string end;
  put_u32(&end, 0);
  return sink(end);
}

Result<std::string> build_snapshot_image(const MemberTable& members, kv::SnapshotStream& stream) {
  std::string out;
  RAFTKV_RETURN_IF_ERROR(write_snapshot_image(members, stream, [&out](std::string_view piece) {
    out.append(piece);
    return Status::ok();
  }));
  return out;
}

Result<SnapshotImage> SnapshotImage::parse(std::string_view image) {
  if (image.size() < kMagic.size() || image.substr(0, kMagic.size()) != kMagic) {
    return Status::corruption("snapshot image: bad magic");
  }
  std::string_view b = image.substr(kMagic.size());
  uint32_t n = 0;
  if (!get_u32(&b, &n) || b.size() < n) return Status::corruption("snapshot image: bad table length");
  Result<MemberTable> t = decode_member_table(b.substr(0, n));
  if (!t) return t.status();
  b.remove_prefix(n);
  SnapshotImage img;
  img.members_ = std::move(*t);
  img.frames_ = b;
  // Walk the frames once so restore never meets a framing error midway.
  for (;;) {
    uint32_t len = 0;
    if (!get_u32(&b, &len)) return Status::corruption("snapshot image: missing end mark");
    if (len == 0) break;
    if (len > kMaxFrameBytes || b.size() < len) {
      return Status::corruption("snapshot image: frame length out of range");
    }
    b.remove_prefix(len);
  }
  if (!b.empty()) return Status::corruption("snapshot image: bytes after the end mark");
  return img;
}

kv::ChunkSource SnapshotImage::chunks() const {
  auto rest = std::make_shared<std::string_view>(frames_);
  return [rest]() -> Result<std::optional<std::string>> {
    uint32_t len = 0;
    if (!get_u32(rest.get(), &len)) return Status::corruption("snapshot image: truncated");
    if (len == 0) return std::optional<std::string>();
    std::string chunk(rest->substr(0, len));
    rest->remove_prefix(len);
    return std::optional<std::string>(std::move(chunk));
  };
}

}  // namespace raftkv::server

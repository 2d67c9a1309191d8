// Byte-level helpers shared by the dataset readers: whole-file reads, fixed-width loads and
// overflow-checked size arithmetic. Every reader works on an in-memory buffer (so the fuzz targets
// can drive it) and names its `origin` (a path, or "path:member") in each error.
#pragma once
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

// The whole file. Throws hpt::Error naming the path when it is missing, a directory or unreadable.
std::vector<uint8_t> read_file(const std::string& path);
// At most the first max_bytes of the file (for sniffing its format).
std::vector<uint8_t> read_file_head(const std::string& path, size_t max_bytes);
void write_file(const std::string& path, const void* data, size_t size);

inline std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

inline uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
    return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) { return load_le32(p) | (uint64_t(load_le32(p + 4)) << 32); }
inline uint32_t load_be32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// a * b, or false when it does not fit in `limit` (the product is then left unspecified).
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t limit, uint64_t* out) {
    if (a != 0 && b > limit / a) return false;
    *out = a * b;
    return *out <= limit;
}

// A size no single array we read may exceed; keeps a forged header from asking for exabytes
// even where a bound from the file's size is looser (deflate can expand 1032x).
constexpr uint64_t kMaxArrayBytes = uint64_t(1) << 40;

}  // namespace hpt::data

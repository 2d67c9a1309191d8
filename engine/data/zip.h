// A ZIP reader for .npz archives: walks the local file headers in order (stored or deflate,
// ZIP64 extra fields, data descriptors), verifies each member's sizes and CRC-32, and requires the
// central directory at the end to list the same members (so a truncated archive is an error).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct ZipMember {
    std::string name;
    std::vector<uint8_t> data;  // uncompressed
};

bool is_zip(const uint8_t* data, size_t size);  // "PK\3\4" or an empty archive's "PK\5\6"

// Every member, in archive order. Throws naming `origin` and the member on anything malformed;
// the members' uncompressed sizes may total at most max_total bytes.
std::vector<ZipMember> read_zip(const uint8_t* data, size_t size, const std::string& origin,
                                uint64_t max_total = uint64_t(1) << 40);

}  // namespace hpt::data

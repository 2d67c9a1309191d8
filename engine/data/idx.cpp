#include "engine/data/idx.h"

#include <cstdint>
#include <algorithm>

#include "engine/core/error.h"
#include "engine/data/gzip.h"
#include "engine/data/io.h"

namespace hpt::data {

bool looks_like_idx(const uint8_t* data, size_t size) {
    uint8_t m[4];
    try {
        ByteReader r(data, size, "");
        if (r.read(m, 4) < 4) return false;
    } catch (const Error&) {
        return false;
    }
        // Every IDX type code, so that parse_idx can say which one it does not support.
    const bool type_ok = m[2] == 0x08 || m[2] == 0x09 || (m[2] >= 0x0b && m[2] <= 0x0e);
    return m[0] == 0 && m[1] == 0 && type_ok && m[3] >= 1;
}

IdxArray parse_idx(const uint8_t* data, size_t size, const std::string& origin) {
    ByteReader r(data, size, origin);
    uint8_t magic[4];
    r.read_exact(magic, 4, "the IDX magic");
    if (magic[0] != 0 || magic[1] != 0)
        HPT_THROW(origin, ": not an IDX file (magic bytes ", int(magic[0]), " ", int(magic[1]), " ", int(magic[2]), " ",
                  int(magic[3]), "; expected 0 0 8 <ndims>)");
    if (magic[2] != 0x08)
        HPT_THROW(origin, ": IDX data type 0x", std::hex, int(magic[2]), " is not supported (only 0x08, unsigned byte)");
    const int ndims = magic[3];
    if (ndims == 0) HPT_THROW(origin, ": IDX header has 0 dimensions");
    IdxArray a;
    uint64_t count = 1;
    for (int i = 0; i < ndims; ++i) {
        uint8_t b[4];
        r.read_exact(b, 4, "the IDX dimensions");
        const uint32_t dim = load_be32(b);
        a.dims.push_back(int64_t(dim));
        if (!checked_mul(count, dim, kMaxArrayBytes, &count))
            HPT_THROW(origin, ": IDX dimensions ", shape_str(a.dims), " are too large");
    }
    if (count > r.max_remaining())
        HPT_THROW(origin, ": truncated: IDX dimensions ", shape_str(a.dims), " need ", count, " data bytes, the ",
                  r.compressed() ? "compressed file can hold at most " : "file holds ", r.max_remaining());
    // Grow with the data actually read: a gzip file can promise ~1000x its size and stop short.
    if (!r.compressed()) a.data.reserve(size_t(count));
    for (uint64_t have = 0; have < count;) {
        const uint64_t step = std::min<uint64_t>(count - have, std::max<uint64_t>(have, 1 << 20));
        a.data.resize(size_t(have + step));
        const size_t got = r.read(a.data.data() + have, size_t(step));
        have += got;
        if (got < step)
            HPT_THROW(origin, ": truncated: IDX dimensions ", shape_str(a.dims), " need ", count, " data bytes, the ",
                      r.compressed() ? "decompressed " : "", "file holds ", have);
    }
    if (!r.at_end())
        HPT_THROW(origin, ": extra data after the ", count, " bytes that IDX dimensions ", shape_str(a.dims),
                  " describe");
    return a;
}

IdxArray read_idx(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file(path);
    return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace hpt::data

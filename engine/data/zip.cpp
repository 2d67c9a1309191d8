#include "engine/data/zip.h"

#include <cstdint>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <set>

#include "engine/core/error.h"
#include "engine/data/gzip.h"
#include "engine/data/io.h"

namespace hpt::data {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50, kDescriptorSig = 0x08074b50;
constexpr uint32_t kSentinel32 = 0xffffffffu;

struct Inflated {
    uint64_t consumed = 0;  // compressed bytes the deflate stream occupied
};

// Raw deflate of `in` into `out`, growing it as data actually arrives (a forged size never
// allocates ahead of the stream) up to `limit` bytes. With `exact` the stream must produce exactly
// `limit` bytes (the size a header declared).
Inflated inflate_raw(const uint8_t* in, uint64_t in_size, std::vector<uint8_t>& out, bool exact,
                     uint64_t limit, const std::string& where) {
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK) HPT_THROW(where, ": zlib inflateInit2 failed");
    struct End {
        z_stream* z;
        ~End() { inflateEnd(z); }
    } end{&zs};
    out.clear();
    uint64_t in_pos = 0, out_pos = 0;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in_size) {
            zs.next_in = const_cast<Bytef*>(in + in_pos);
            zs.avail_in = uInt(std::min<uint64_t>(in_size - in_pos, UINT_MAX));
            in_pos += zs.avail_in;
        }
        uint8_t probe;
        if (out_pos == out.size() && out.size() < limit) {
            const uint64_t grow = std::max<uint64_t>(out.size(), 1 << 16);
            out.resize(size_t(std::min<uint64_t>(limit, out.size() + grow)));
        }
        // At the limit, a 1-byte probe tells whether the stream would produce more.
        const bool full = out_pos == out.size();
        zs.next_out = full ? &probe : out.data() + out_pos;
        zs.avail_out = full ? 1 : uInt(std::min<uint64_t>(out.size() - out_pos, UINT_MAX));
        const uInt before = zs.avail_out;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        if (full && zs.avail_out == 0)
            HPT_THROW(where, ": decompresses to more than the ", limit, " bytes ",
                      exact ? "its header declares" : "allowed");
        if (!full) out_pos += before - zs.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            HPT_THROW(where, ": corrupt deflate data after ", out_pos, " bytes: ", zs.msg ? zs.msg : "error");
        if (zs.avail_in == 0 && in_pos == in_size && zs.avail_out > 0)
            HPT_THROW(where, ": truncated deflate stream after ", out_pos, " bytes");
        if (rc == Z_BUF_ERROR && zs.avail_in > 0 && zs.avail_out > 0)
            HPT_THROW(where, ": zlib made no progress (corrupt deflate data)");
    }
    if (exact && out_pos != limit)
        HPT_THROW(where, ": decompresses to ", out_pos, " bytes but its header declares ", limit);
    out.resize(size_t(out_pos));
    return {in_pos - zs.avail_in};
}

uint32_t crc_of(const std::vector<uint8_t>& v) {
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t at = 0;
    while (at < v.size()) {
        const uInt n = uInt(std::min<size_t>(v.size() - at, UINT_MAX));
        crc = crc32(crc, v.data() + at, n);
        at += n;
    }
    return uint32_t(crc);
}

// The end record must close the file and its directory must list exactly the members the local
// headers gave: a cut or a splice anywhere in the archive shows up here.
void check_central_directory(const uint8_t* data, size_t size, uint64_t cd_at, const std::vector<ZipMember>& members,
                             const std::vector<uint32_t>& crcs, const std::string& origin) {
    uint64_t end = UINT64_MAX;
    if (size >= 22)
        for (uint64_t p = size - 22;; --p) {
            if (load_le32(data + p) == kEndSig && p + 22 + load_le16(data + p + 20) == size) {
                end = p;
                break;
            }
            if (p == 0 || size - p > 22 + 65535) break;
        }
    if (end == UINT64_MAX) HPT_THROW(origin, ": truncated ZIP archive: no end-of-central-directory record at its end");
    uint64_t count = load_le16(data + end + 10), cd_offset = load_le32(data + end + 16);
    if (count == 0xffff || cd_offset == kSentinel32) {
        if (end < 20 || load_le32(data + end - 20) != kLocator64Sig)
            HPT_THROW(origin, ": ZIP64 end-of-central-directory locator missing");
        const uint64_t z = load_le64(data + end - 20 + 8);
        if (z > end - 20 || end - 20 - z < 56 || load_le32(data + z) != kEnd64Sig)
            HPT_THROW(origin, ": bad ZIP64 end-of-central-directory record");
        count = load_le64(data + z + 32);
        cd_offset = load_le64(data + z + 48);
    }
    if (count != members.size())
        HPT_THROW(origin, ": the central directory lists ", count, " members but the archive holds ", members.size());
    if (cd_offset != cd_at)
        HPT_THROW(origin, ": the central directory is at offset ", cd_offset, ", not after the last member (", cd_at, ")");
    uint64_t p = cd_at;
    for (size_t i = 0; i < members.size(); ++i) {
        if (p > end || end - p < 46 || load_le32(data + p) != kCentralSig)
            HPT_THROW(origin, ": bad central directory entry ", i, " at offset ", p);
        const uint64_t name_len = load_le16(data + p + 28), rest = name_len + load_le16(data + p + 30) + load_le16(data + p + 32);
        if (end - p - 46 < rest) HPT_THROW(origin, ": central directory entry ", i, " overruns the directory");
        const std::string name(reinterpret_cast<const char*>(data + p + 46), size_t(name_len));
        if (name != members[i].name || load_le32(data + p + 16) != crcs[i])
            HPT_THROW(origin, ": central directory entry ", i, " ('", name, "') does not match local header '",
                      members[i].name, "'");
        p += 46 + rest;
    }
}

}  // namespace

bool is_zip(const uint8_t* data, size_t size) {
    return size >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

std::vector<ZipMember> read_zip(const uint8_t* data, size_t size, const std::string& origin, uint64_t max_total) {
    std::vector<ZipMember> members;
    std::vector<uint32_t> crcs;
    std::set<std::string> names;
    uint64_t total = 0, pos = 0;
    for (;;) {
        if (size - pos < 4)
            HPT_THROW(origin, ": truncated ZIP archive: no central directory after ", members.size(),
                      " member(s) at offset ", pos);
        const uint32_t sig = load_le32(data + pos);
        if (sig == kCentralSig || sig == kEndSig || sig == kEnd64Sig) break;
        if (sig != kLocalSig)
            HPT_THROW(origin, ": not a ZIP local file header at offset ", pos, " (signature 0x", std::hex, sig, ")");
        if (size - pos < 30) HPT_THROW(origin, ": truncated ZIP local header at offset ", pos);
        const uint8_t* h = data + pos;
        const uint16_t flags = load_le16(h + 6), method = load_le16(h + 8);
        const uint32_t crc_declared = load_le32(h + 14);
        uint64_t csize = load_le32(h + 18), usize = load_le32(h + 22);
        const uint16_t name_len = load_le16(h + 26), extra_len = load_le16(h + 28);
        if (size - pos - 30 < uint64_t(name_len) + extra_len)
            HPT_THROW(origin, ": truncated ZIP local header at offset ", pos, " (name and extra fields)");
        ZipMember m;
        m.name.assign(reinterpret_cast<const char*>(h + 30), name_len);
        const std::string where = origin + ":" + m.name;
        if (flags & 1) HPT_THROW(where, ": encrypted ZIP members are not supported");
        if (method != 0 && method != 8)
            HPT_THROW(where, ": ZIP compression method ", method, " is not supported (only stored and deflate)");
        if (!names.insert(m.name).second) HPT_THROW(where, ": duplicate member name in the ZIP archive");

        // ZIP64: a 0xffffffff size means the real one is in extra field 0x0001 (usize, then csize).
        bool zip64 = false;
        const uint8_t* ex = h + 30 + name_len;
        for (uint32_t at = 0; at + 4 <= extra_len;) {
            const uint16_t id = load_le16(ex + at), len = load_le16(ex + at + 2);
            if (at + 4 + uint32_t(len) > extra_len) HPT_THROW(where, ": ZIP extra field overruns its header");
            if (id == 0x0001) {
                zip64 = true;
                const uint8_t* f = ex + at + 4;
                uint32_t used = 0;
                if (usize == kSentinel32) {
                    if (len < used + 8) HPT_THROW(where, ": ZIP64 extra field too short for the size");
                    usize = load_le64(f + used);
                    used += 8;
                }
                if (csize == kSentinel32) {
                    if (len < used + 8) HPT_THROW(where, ": ZIP64 extra field too short for the compressed size");
                    csize = load_le64(f + used);
                }
            }
            at += 4 + len;
        }
        pos += 30 + uint64_t(name_len) + extra_len;
        const uint64_t avail = size - pos;
        const bool descriptor = (flags & 8) != 0;

        if (!descriptor) {
            if (csize > avail)
                HPT_THROW(where, ": truncated: ", csize, " compressed bytes declared, ", avail, " left in the file");
            if (method == 0 && usize != csize)
                HPT_THROW(where, ": stored member with compressed size ", csize, " != size ", usize);
            if (usize > (csize + 1) * kMaxDeflateRatio + 1024)
                HPT_THROW(where, ": declares ", usize, " bytes from ", csize,
                          " compressed bytes, more than deflate can produce");
            if (usize > max_total - total)
                HPT_THROW(where, ": members total more than ", max_total, " bytes, the limit for this archive");
            if (method == 0) {
                m.data.assign(data + pos, data + pos + usize);
            } else {
                const Inflated r = inflate_raw(data + pos, csize, m.data, true, usize, where);
                if (r.consumed != csize)
                    HPT_THROW(where, ": deflate stream occupies ", r.consumed, " bytes but the header declares ", csize);
            }
            pos += csize;
        } else {
            // Sizes and CRC follow the data; only deflate finds its own end.
            if (method == 0) HPT_THROW(where, ": stored member with a data descriptor is not supported");
            const uint64_t limit = std::min(max_total - total, (avail + 1) * kMaxDeflateRatio + 1024);
            const Inflated r = inflate_raw(data + pos, avail, m.data, false, limit, where);
            csize = r.consumed;
            pos += csize;
            if (size - pos >= 4 && load_le32(data + pos) == kDescriptorSig) pos += 4;
            const uint64_t dlen = zip64 ? 20 : 12;
            if (size - pos < dlen) HPT_THROW(where, ": truncated ZIP data descriptor");
            const uint8_t* d = data + pos;
            const uint32_t dcrc = load_le32(d);
            const uint64_t dc = zip64 ? load_le64(d + 4) : load_le32(d + 4);
            usize = zip64 ? load_le64(d + 12) : load_le32(d + 8);
            pos += dlen;
            if (dc != csize)
                HPT_THROW(where, ": data descriptor says ", dc, " compressed bytes, the stream has ", csize);
            if (usize != m.data.size())
                HPT_THROW(where, ": data descriptor says ", usize, " bytes, the stream has ", m.data.size());
            const uint32_t crc = crc_of(m.data);
            if (crc != dcrc) HPT_THROW(where, ": CRC-32 mismatch (data descriptor 0x", std::hex, dcrc, ", data 0x", crc, ")");
            total += usize;
            crcs.push_back(crc);
            members.push_back(std::move(m));
            continue;
        }
        const uint32_t crc = crc_of(m.data);
        if (crc != crc_declared)
            HPT_THROW(where, ": CRC-32 mismatch (header 0x", std::hex, crc_declared, ", data 0x", crc, ")");
        total += usize;
        crcs.push_back(crc);
        members.push_back(std::move(m));
    }
    check_central_directory(data, size, pos, members, crcs, origin);
    return members;
}

}  // namespace hpt::data

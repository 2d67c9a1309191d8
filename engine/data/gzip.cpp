#include "engine/data/gzip.h"

#include <cstdint>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "engine/core/error.h"

namespace hpt::data {

bool is_gzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

struct GzipReader::State {
    z_stream zs{};
    std::string origin;
    uint64_t produced = 0;
    uint64_t remaining_input = 0;  // bytes not yet handed to zlib (inputs over 4 GiB)
    bool ended = false;
};

GzipReader::GzipReader(const uint8_t* data, size_t size, std::string origin) : s_(new State) {
    s_->origin = std::move(origin);
    if (size == 0) HPT_THROW(s_->origin, ": empty file (expected gzip data)");
    if (!is_gzip(data, size)) HPT_THROW(s_->origin, ": not gzip data (no 1f 8b magic)");
    // 15 + 16: a gzip wrapper only (zlib then checks each member's CRC-32 and ISIZE itself).
    if (inflateInit2(&s_->zs, 15 + 16) != Z_OK) HPT_THROW(s_->origin, ": zlib inflateInit2 failed");
    s_->zs.next_in = const_cast<Bytef*>(data);
    // avail_in is 32-bit; longer inputs are fed in slices.
    s_->zs.avail_in = uInt(std::min<size_t>(size, UINT_MAX));
    s_->remaining_input = size - s_->zs.avail_in;
}

GzipReader::~GzipReader() { inflateEnd(&s_->zs); }

uint64_t GzipReader::max_remaining() const {
    if (s_->ended) return 0;
    return (uint64_t(s_->zs.avail_in) + s_->remaining_input + 1) * kMaxDeflateRatio + 1024;
}

size_t GzipReader::read(uint8_t* out, size_t n) {
    State& s = *s_;
    z_stream& zs = s.zs;
    size_t got = 0;
    while (got < n && !s.ended) {
        if (zs.avail_in == 0 && s.remaining_input > 0) {
            zs.avail_in = uInt(std::min<uint64_t>(s.remaining_input, UINT_MAX));
            s.remaining_input -= zs.avail_in;
        }
        zs.next_out = out + got;
        zs.avail_out = uInt(std::min<size_t>(n - got, UINT_MAX));
        const uInt before = zs.avail_out;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        got += before - zs.avail_out;
        s.produced += before - zs.avail_out;
        if (rc == Z_STREAM_END) {
            // Another member may follow (gzip allows concatenation); zero padding is tolerated.
            const uint8_t* rest = zs.next_in;
            const uint64_t left = zs.avail_in + s.remaining_input;
            if (left == 0) {
                s.ended = true;
            } else if (left >= 2 && zs.avail_in >= 2 && rest[0] == 0x1f && rest[1] == 0x8b) {
                inflateReset(&zs);
            } else {
                for (uint64_t i = 0; i < left; ++i)
                    if (rest[i] != 0)
                        HPT_THROW(s.origin, ": ", left, " bytes of trailing garbage after the gzip stream (",
                                  s.produced, " bytes decompressed)");
                s.ended = true;
            }
            continue;
        }
        if (rc == Z_OK || rc == Z_BUF_ERROR) {
            // No input left but the stream has not ended: the file was cut short.
            if (zs.avail_in == 0 && s.remaining_input == 0 && (zs.avail_out > 0 || rc == Z_BUF_ERROR))
                HPT_THROW(s.origin, ": truncated gzip stream (input ended after ", s.produced,
                          " decompressed bytes)");
            if (rc == Z_BUF_ERROR && zs.avail_out > 0 && zs.avail_in > 0)
                HPT_THROW(s.origin, ": zlib made no progress (corrupt gzip data)");
            continue;
        }
        const char* why = zs.msg ? zs.msg : "error";
        std::string hint;
        if (std::strcmp(why, "incorrect data check") == 0) hint = " (CRC-32 mismatch)";
        if (std::strcmp(why, "incorrect length check") == 0) hint = " (ISIZE does not match the data)";
        HPT_THROW(s.origin, ": corrupt gzip data after ", s.produced, " decompressed bytes: ", why, hint);
    }
    return got;
}

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& origin, uint64_t max_out) {
    GzipReader gz(data, size, origin);
    std::vector<uint8_t> out;
    size_t chunk = 1 << 16;
    for (;;) {
        const size_t at = out.size();
        if (at >= max_out) {
            uint8_t probe;
            if (gz.read(&probe, 1) == 0) break;
            HPT_THROW(origin, ": decompresses to more than ", max_out, " bytes, the limit for this file");
        }
        const size_t want = size_t(std::min<uint64_t>(chunk, max_out - at));
        out.resize(at + want);
        const size_t got = gz.read(out.data() + at, want);
        out.resize(at + got);
        if (got < want) break;
        chunk = std::min<size_t>(chunk * 2, size_t(1) << 26);
    }
    return out;
}

ByteReader::ByteReader(const uint8_t* data, size_t size, std::string origin)
    : data_(data), size_(size), origin_(std::move(origin)) {
    if (is_gzip(data, size)) gz_ = std::make_unique<GzipReader>(data, size, origin_);
}

size_t ByteReader::read(uint8_t* out, size_t n) {
    size_t got;
    if (gz_) {
        got = gz_->read(out, n);
    } else {
        got = size_t(std::min<uint64_t>(n, size_ - pos_));
        if (got) std::memcpy(out, data_ + pos_, got);
    }
    pos_ += got;
    return got;
}

void ByteReader::read_exact(uint8_t* out, size_t n, const char* what) {
    const uint64_t start = pos_;
    const size_t got = read(out, n);
    if (got < n)
        HPT_THROW(origin_, ": truncated: ", what, " needs ", n, " bytes at offset ", start, " but the ",
                  gz_ ? "decompressed " : "", "content ends after ", got);
}

bool ByteReader::at_end() {
    if (!gz_) return pos_ == size_;
    uint8_t probe;
    if (gz_->read(&probe, 1) == 0) return true;
    ++pos_;
    return false;
}

uint64_t ByteReader::max_remaining() const { return gz_ ? gz_->max_remaining() : size_ - pos_; }

}  // namespace hpt::data

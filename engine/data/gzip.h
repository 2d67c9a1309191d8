// gzip (RFC 1952) decompression through zlib, as a stream: a reader pulls exactly the bytes a
// header promised and checks the end, so a forged size never inflates a bomb into memory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hpt::data {

// Deflate cannot expand data more than ~1032:1; a size bound for compressed input.
constexpr uint64_t kMaxDeflateRatio = 1032;

bool is_gzip(const uint8_t* data, size_t size);  // the 1f 8b magic

class GzipReader {
public:
    GzipReader(const uint8_t* data, size_t size, std::string origin);
    ~GzipReader();
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;

    // Up to n bytes. Fewer only when the stream has ended: every member's CRC-32 and length
    // verified and nothing but zero padding after the last. Throws on truncated or corrupt data.
    size_t read(uint8_t* out, size_t n);
    // An upper bound on the decompressed bytes still to come.
    uint64_t max_remaining() const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

// The whole decompressed content (concatenated members), at most max_out bytes.
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& origin, uint64_t max_out);

// A buffer that may or may not be gzip-compressed (sniffed by magic), read as a stream of its
// content: the IDX and CSV readers accept both.
class ByteReader {
public:
    ByteReader(const uint8_t* data, size_t size, std::string origin);

    size_t read(uint8_t* out, size_t n);
    // Exactly n bytes or an error saying the content is truncated while reading `what`.
    void read_exact(uint8_t* out, size_t n, const char* what);
    // True when the content has ended (for gzip: after verifying the trailer).
    bool at_end();
    // Exact for raw data; the deflate bound for gzip.
    uint64_t max_remaining() const;
    uint64_t position() const { return pos_; }
    bool compressed() const { return gz_ != nullptr; }
    const std::string& origin() const { return origin_; }

private:
    const uint8_t* data_;
    size_t size_;
    std::string origin_;
    std::unique_ptr<GzipReader> gz_;
    uint64_t pos_ = 0;  // content bytes handed out so far
};

}  // namespace hpt::data

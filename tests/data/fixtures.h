// Builders for small dataset files (IDX, gzip, .npy, ZIP/.npz, PNG/BMP/JPEG) that the data tests
// write to a temporary directory, valid or deliberately broken.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::test {

using Bytes = std::vector<uint8_t>;

// A fresh directory under /tmp, removed with everything in it when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    // Writes bytes (or text) to path()/name, creating parent folders; returns the full path.
    std::string write(const std::string& name, const Bytes& data) const;
    std::string write_text(const std::string& name, const std::string& text) const;

private:
    std::string path_;
};

Bytes idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& data);
Bytes gzip_bytes(const Bytes& data);
Bytes npy_bytes(const std::string& descr, const std::vector<int64_t>& shape, const Bytes& data, int version = 1);

struct ZipEntry {
    std::string name;
    Bytes data;
};
struct ZipOptions {
    bool deflate = true;
    bool zip64_extra = false;      // numpy's redundant ZIP64 extra field, real 32-bit sizes
    bool zip64_sentinels = false;  // 0xffffffff in the header, real sizes only in the extra field
    bool descriptor = false;       // sizes and CRC in a data descriptor after the data
};
Bytes zip_bytes(const std::vector<ZipEntry>& entries, const ZipOptions& opt = {});

// Encoded images of w x h x c pixels (c = 1, 2, 3 or 4).
Bytes png_bytes(int w, int h, int c, const Bytes& pixels);
Bytes bmp_bytes(int w, int h, int c, const Bytes& pixels);
Bytes jpg_bytes(int w, int h, int c, const Bytes& pixels);

Bytes read_bytes(const std::string& path);
// A constant w x h x c image plus a per-pixel ramp, distinct for different seeds.
Bytes pattern(int w, int h, int c, int seed);

}  // namespace hpt::test

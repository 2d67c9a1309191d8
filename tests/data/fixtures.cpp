#include "tests/data/fixtures.h"

#include <cstdint>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "engine/data/io.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;

namespace hpt::test {

TempDir::TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hpt_data_XXXXXX").string();
    if (!mkdtemp(&tmpl[0])) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const Bytes& data) const {
    const fs::path p = fs::path(path_) / name;
    fs::create_directories(p.parent_path());
    data::write_file(p.string(), data.data(), data.size());
    return p.string();
}

std::string TempDir::write_text(const std::string& name, const std::string& text) const {
    return write(name, Bytes(text.begin(), text.end()));
}

namespace {
void put_be32(Bytes& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}
void put_le(Bytes& b, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

Bytes deflate_with(const Bytes& data, int window_bits) {
    z_stream zs{};
    if (deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2");
    Bytes out(deflateBound(&zs, uLong(data.size())) + 32);
    zs.next_in = const_cast<Bytef*>(data.data());
    zs.avail_in = uInt(data.size());
    zs.next_out = out.data();
    zs.avail_out = uInt(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
    return out;
}

void write_cb(void* ctx, void* data, int size) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    static_cast<Bytes*>(ctx)->insert(static_cast<Bytes*>(ctx)->end(), p, p + size);
}
}  // namespace

Bytes idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& data) {
    Bytes b = {0, 0, type, uint8_t(dims.size())};
    for (uint32_t d : dims) put_be32(b, d);
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

Bytes gzip_bytes(const Bytes& data) { return deflate_with(data, 15 + 16); }

Bytes npy_bytes(const std::string& descr, const std::vector<int64_t>& shape, const Bytes& data, int version) {
    std::string dims;  // as Python writes tuples: (3,) and (3, 4)
    for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
    if (shape.size() == 1) dims += ",";
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    const size_t pre = version == 1 ? 10 : 12;
    while ((pre + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    Bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(version), 0};
    put_le(b, h.size(), version == 1 ? 2 : 4);
    b.insert(b.end(), h.begin(), h.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

Bytes zip_bytes(const std::vector<ZipEntry>& entries, const ZipOptions& opt) {
    Bytes out, central;
    for (const ZipEntry& e : entries) {
        const uint32_t crc = uint32_t(crc32(crc32(0, nullptr, 0), e.data.data(), uInt(e.data.size())));
        const Bytes payload = opt.deflate ? deflate_with(e.data, -15) : e.data;
        const uint64_t offset = out.size();
        const bool extra = opt.zip64_extra || opt.zip64_sentinels;
        const uint32_t usize32 = opt.descriptor ? 0 : opt.zip64_sentinels ? 0xffffffffu : uint32_t(e.data.size());
        const uint32_t csize32 = opt.descriptor ? 0 : opt.zip64_sentinels ? 0xffffffffu : uint32_t(payload.size());
        put_le(out, 0x04034b50, 4);
        put_le(out, extra ? 45 : 20, 2);
        put_le(out, opt.descriptor ? 8 : 0, 2);
        put_le(out, opt.deflate ? 8 : 0, 2);
        put_le(out, 0, 2);
        put_le(out, 0x21, 2);  // 1980-01-01
        put_le(out, opt.descriptor ? 0 : crc, 4);
        put_le(out, csize32, 4);
        put_le(out, usize32, 4);
        put_le(out, e.name.size(), 2);
        put_le(out, extra ? 20 : 0, 2);
        out.insert(out.end(), e.name.begin(), e.name.end());
        if (extra) {
            put_le(out, 1, 2);
            put_le(out, 16, 2);
            put_le(out, opt.descriptor ? 0 : e.data.size(), 8);
            put_le(out, opt.descriptor ? 0 : payload.size(), 8);
        }
        out.insert(out.end(), payload.begin(), payload.end());
        if (opt.descriptor) {
            put_le(out, 0x08074b50, 4);
            put_le(out, crc, 4);
            put_le(out, payload.size(), extra ? 8 : 4);
            put_le(out, e.data.size(), extra ? 8 : 4);
        }
        put_le(central, 0x02014b50, 4);
        put_le(central, 20, 2);
        put_le(central, 20, 2);
        put_le(central, opt.descriptor ? 8 : 0, 2);
        put_le(central, opt.deflate ? 8 : 0, 2);
        put_le(central, 0, 2);
        put_le(central, 0x21, 2);
        put_le(central, crc, 4);
        put_le(central, payload.size(), 4);
        put_le(central, e.data.size(), 4);
        put_le(central, e.name.size(), 2);
        put_le(central, 0, 2);
        put_le(central, 0, 2);
        put_le(central, 0, 2);
        put_le(central, 0, 2);
        put_le(central, 0, 4);
        put_le(central, offset, 4);
        central.insert(central.end(), e.name.begin(), e.name.end());
    }
    const uint64_t cd_offset = out.size();
    out.insert(out.end(), central.begin(), central.end());
    put_le(out, 0x06054b50, 4);
    put_le(out, 0, 4);
    put_le(out, entries.size(), 2);
    put_le(out, entries.size(), 2);
    put_le(out, central.size(), 4);
    put_le(out, cd_offset, 4);
    put_le(out, 0, 2);
    return out;
}

Bytes png_bytes(int w, int h, int c, const Bytes& pixels) {
    Bytes out;
    if (!stbi_write_png_to_func(write_cb, &out, w, h, c, pixels.data(), w * c)) throw std::runtime_error("png");
    return out;
}
Bytes bmp_bytes(int w, int h, int c, const Bytes& pixels) {
    Bytes out;
    if (!stbi_write_bmp_to_func(write_cb, &out, w, h, c, pixels.data())) throw std::runtime_error("bmp");
    return out;
}
Bytes jpg_bytes(int w, int h, int c, const Bytes& pixels) {
    Bytes out;
    if (!stbi_write_jpg_to_func(write_cb, &out, w, h, c, pixels.data(), 95)) throw std::runtime_error("jpg");
    return out;
}

Bytes read_bytes(const std::string& path) { return data::read_file(path); }

Bytes pattern(int w, int h, int c, int seed) {
    Bytes b(size_t(w) * h * c);
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t((seed * 37 + i * 5) & 0xff);
    return b;
}

}  // namespace hpt::test

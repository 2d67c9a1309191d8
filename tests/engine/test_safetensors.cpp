// safetensors headers: every way a file can be wrong is an error naming the file and the tensor.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/io/safetensors.h"
#include "engine/ops/ops.h"
#include "engine/io/safetensors_header.h"

using namespace hpt;

namespace {

// A file of `header` (JSON text) and `data_bytes` zero bytes of data.
std::string file_of(const std::string& header, size_t data_bytes) {
    std::string f(8, '\0');
    for (int i = 0; i < 8; ++i) f[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
    return f + header + std::string(data_bytes, '\0');
}

io::SafetensorsHeader header_of(const std::string& f) {
    return io::parse_safetensors_header(reinterpret_cast<const uint8_t*>(f.data()), f.size(),
                                        "m.safetensors");
}

}  // namespace

TEST_CASE("safetensors headers: entries by offset, and every inconsistency refused", "[io]") {
    const std::string ok = file_of(
        R"({"b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
        R"("e":{"dtype":"U8","shape":[0,5],"data_offsets":[32,32]},"__metadata__":{"stage":"base"}})",
        32);
    const io::SafetensorsHeader h = header_of(ok);
    REQUIRE(h.entries.size() == 3);
    CHECK(h.entries[0].name == "a");
    CHECK(h.entries[1].name == "b");
    CHECK(h.entries[1].shape == std::vector<int64_t>{2, 3});
    CHECK(h.entries[2].name == "e");
    CHECK(h.metadata.at("stage") == "base");
    const io::Safetensors st = io::parse_safetensors(ok, "m.safetensors");
    CHECK(st.find("b")->shape() == Shape{2, 3});

    auto refused = [](const std::string& f, const std::string& what) {
        CHECK_THROWS_WITH(header_of(f), Catch::Contains("m.safetensors") && Catch::Contains(what));
    };
    refused("abc", "shorter than its header");
    refused(ok.substr(0, ok.size() - 40), "does not fit the file");
    refused(file_of("[1,2]", 0), "not a JSON object");
    refused(file_of(R"({"t":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", 2),
            "unsupported dtype 'F16'");
    refused(file_of(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "bad dimension -1");
    refused(file_of(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), "lies outside");
    refused(file_of(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "which needs 12");
    refused(file_of(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4]}})", 8), "two entries");
    // 2^39 x 2^39 elements: the count wrapped to 0 before it was checked, and passed as an empty
    // tensor of an impossible shape.
    refused(file_of(R"({"t":{"dtype":"F32","shape":[549755813888,549755813888],"data_offsets":[0,0]}})", 0),
            "too many elements");
}

TEST_CASE("read_safetensors_header reads a file's header alone, and refuses what is not one", "[io]") {
    const std::string dir = std::filesystem::temp_directory_path() / ("hpt_sthdr_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    hpt::io::save_safetensors(dir + "/a.safetensors", {{"w", hpt::full({2, 3}, 1.0f, hpt::DType::f32)}}, {{"k", "v"}});
    const hpt::io::SafetensorsHeader h = hpt::io::read_safetensors_header(dir + "/a.safetensors");
    REQUIRE(h.entries.size() == 1);
    CHECK(h.entries[0].name == "w");
    CHECK(h.entries[0].shape == std::vector<int64_t>{2, 3});
    CHECK(h.metadata.at("k") == "v");
    std::ofstream(dir + "/t.toml") << "[run]\nseed = 1\n";
    CHECK_THROWS_WITH(hpt::io::read_safetensors_header(dir + "/t.toml"), Catch::Contains("t.toml"));
    std::ofstream(dir + "/short") << "abc";
    CHECK_THROWS_WITH(hpt::io::read_safetensors_header(dir + "/short"), Catch::Contains("shorter than its header"));
    std::filesystem::remove_all(dir);
}

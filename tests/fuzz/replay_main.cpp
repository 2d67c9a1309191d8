// Replays a fuzz target's corpus without libFuzzer, so that every regular build (gcc, CI) runs
// the parsers over the committed corpus: each input must be parsed or refused with hpt::Error
// (the targets catch that); anything else (another exception, a crash) fails the test.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    int n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(argv[1])) {
        if (!e.is_regular_file()) continue;
        std::ifstream f(e.path(), std::ios::binary);
        const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
        ++n;
    }
    std::printf("%d inputs of %s replayed\n", n, argv[1]);
    return n > 0 ? 0 : 1;  // an empty or missing corpus is a failure, not a pass
}

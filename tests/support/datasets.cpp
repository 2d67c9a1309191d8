#include "tests/support/datasets.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace hpt::test {

std::string find_dataset_dir(const std::string& name, const std::string& probe_file) {
    namespace fs = std::filesystem;
    std::vector<fs::path> roots;
    if (const char* env = std::getenv("HPT_DATA_DIR")) roots.emplace_back(env);
    roots.emplace_back(fs::path(HPT_SOURCE_DIR) / ".." / "shared" / "datasets");
    roots.emplace_back("/usr/share/datasets");
    for (const fs::path& r : roots) {
        const fs::path d = r / name;
        std::error_code ec;
        if (fs::exists(d / probe_file, ec)) return d.lexically_normal().string();
    }
    return "";
}

}  // namespace hpt::test

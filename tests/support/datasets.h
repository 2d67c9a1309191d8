// Where tests find the real datasets: $HPT_DATA_DIR/<name>, the repository's ../shared/datasets/<name>,
// or Debian's /usr/share/datasets/<name> (package dataset-fashion-mnist). Empty when none exists.
#pragma once
#include <string>

namespace hpt::test {
std::string find_dataset_dir(const std::string& name, const std::string& probe_file);
}

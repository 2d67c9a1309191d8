// hpt_run's command line: options on either side of a subcommand, and options that would be
// silently ignored or wrapped around are refused.
#include <catch2/catch.hpp>

#include <filesystem>

#include "hpt/example.h"
#include "tests/hpt/tiny_run.h"

using hpt::test::run_hpt;
using hpt::test::run_hpt_output;
using hpt::test::tmp_dir;
using hpt::test::write_config;
namespace fs = std::filesystem;

TEST_CASE("hpt_run: --threads after a subcommand; the example's options before one are refused", "[hpt][cli]") {
    const std::string dir = tmp_dir("cli");
    const std::string cfg = write_config(dir, 2);
    const std::string train = "train --config '" + cfg + "' --out '" + dir + "/run'";
    // Before, --threads after `train` was an error, and --resume or --seed before it were ignored:
    // `hpt_run --resume train ...` started the run over.
    CHECK(run_hpt(train + " --threads 1") == 0);
    CHECK(fs::exists(dir + "/run/b/final.safetensors"));
    CHECK(run_hpt("--resume " + train) == 2);
    CHECK(run_hpt("--seed 5 " + train + " --resume") == 2);
    CHECK(run_hpt(train + " --resume") == 0);
    // -1 became the seed 2^64 - 1 (config.json then said -1).
    CHECK(run_hpt("train --config '" + cfg + "' --out '" + dir + "/neg' --seed -1") != 0);
    CHECK_FALSE(fs::exists(dir + "/neg"));
    CHECK(run_hpt("data inspect '" + hpt::pipeline::sklearn_digits() + "' --threads 1") == 0);
    CHECK(run_hpt("eval --checkpoint '" + dir + "/run/b/final.safetensors' --data '" + hpt::pipeline::sklearn_digits() +
                  "' --knn-k 0") != 0);
    // A named [eval] option next to --set: CLI11 assigned --set's values after the named options had
    // added theirs to the same list, so --probe-lr was silently dropped; and a part turned off
    // printed as -100.00%.
    const auto [rc, out] = run_hpt_output("eval --threads 1 --checkpoint '" + dir + "/run/b/final.safetensors' --data '" +
                                          hpt::pipeline::sklearn_digits() +
                                          "' --probe-lr 0.25 --probe-epochs 2 --set eval.linear_probe=true --set eval.knn=false");
    CHECK(rc == 0);
    INFO(out);
    CHECK(out.find("probe_lr 0.25,") != std::string::npos);
    CHECK(out.find("probe_epochs 2,") != std::string::npos);
    CHECK(out.find("kNN not run") != std::string::npos);
    CHECK(out.find("linear probe not run") == std::string::npos);
    // A probe option on a run whose [eval] had the probe off turns it on (it was listed as a
    // setting and never used), unless --set turns it off.
    const std::string eval_digits =
        "eval --threads 1 --checkpoint '" + dir + "/run/b/final.safetensors' --data '" + hpt::pipeline::sklearn_digits() + "'";
    CHECK(run_hpt_output(eval_digits + " --probe-epochs 2").second.find("linear probe not run") == std::string::npos);
    CHECK(run_hpt_output(eval_digits + " --probe-epochs 2 --set eval.linear_probe=false").second.find("linear probe not run") !=
          std::string::npos);
    CHECK(run_hpt(eval_digits + " --knn-k 2.5") == 105);
    // Both parts off: features were extracted for nothing, then "not run, not run".
    CHECK(run_hpt(eval_digits + " --set eval.knn=false") == 1);
    // Only the settings of the parts that ran are listed, with the image size used and the k that
    // voted (k was cut to the training images silently).
    const std::string listed = run_hpt_output(eval_digits + " --knn-k 100000").second;
    CHECK(listed.find("probe_lr") == std::string::npos);
    CHECK(listed.find("images at 8x8 (the checkpoint's training size") != std::string::npos);
    CHECK(listed.find("used: every training image votes") != std::string::npos);  // CLI11's validation error, naming --knn-k
    // train: the named options win over --set (--set silently beat --out and --seed); an empty
    // --out is refused, not ignored; seeds up to 2^63 - 1 are taken.
    const auto [prc, printed] =
        run_hpt_output("train --config '" + cfg + "' --print-config --out '" + dir + "/named' --seed 7 --set run.out=x --set run.seed=5");
    CHECK(prc == 0);
    CHECK(printed.find("out = \"" + dir + "/named\"") != std::string::npos);
    CHECK(printed.find("seed = 7") != std::string::npos);
    CHECK(run_hpt("train --config '" + cfg + "' --print-config --out ''") != 0);
    CHECK(run_hpt("train --config '" + cfg + "' --print-config --seed 9223372036854775807") == 0);
    // data inspect carves val as a run with that seed does (it always said seed 0).
    CHECK(run_hpt_output("data inspect '" + hpt::pipeline::sklearn_digits() + "' --seed 3").second.find("with seed 3") !=
          std::string::npos);
    // A --device before `data` was ignored, even misspelled.
    CHECK(run_hpt("--device bogus data inspect '" + hpt::pipeline::sklearn_digits() + "'") == 2);
    fs::remove_all(dir);
}

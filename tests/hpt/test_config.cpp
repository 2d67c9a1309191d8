// Run configs: TOML, --set overrides, did-you-mean for unknown keys, validation, JSON round trip.
#include <catch2/catch.hpp>

#include "hpt/config.h"

using namespace hpt;
using namespace hpt::pipeline;

namespace {
const char* kToml = R"(
[run]
name = "demo"
seed = 7
[model]
width = 0.5
in_channels = 3
[moco]
queue = 1024
[[stage]]
name = "base"
data = "/data/base"
init = "random"
iterations = 100
batch = 64
[[stage]]
name = "target"
data = "/data/target"
iterations = 50
batch = 32
trainable = "bn"
eval_data = ["/data/target", "/data/other"]
)";
}  // namespace

TEST_CASE("a TOML config fills every section and the stages in order", "[config]") {
    const RunConfig c = parse_config(kToml, "demo.toml");
    CHECK(c.run.name == "demo");
    CHECK(c.run.seed == 7);
    CHECK(c.model.width == 0.5);
    CHECK(c.moco.queue == 1024);
    REQUIRE(c.stages.size() == 2);
    CHECK(c.stages[0].init == "random");
    CHECK(c.stages[1].init == "previous");  // the default
    CHECK(c.stages[1].trainable == "bn");
    CHECK(c.stages[1].eval_data == std::vector<std::string>{"/data/target", "/data/other"});
    CHECK(c.stages[0].effective_lr() == Approx(0.03 * 64 / 256));
    validate(c);
}

TEST_CASE("unknown keys are errors with the nearest known key", "[config]") {
    CHECK_THROWS_WITH(parse_config("[model]\nwidht = 2\n", "x.toml"),
                      Catch::Contains("x.toml: unknown key 'model.widht'") && Catch::Contains("did you mean 'model.width'"));
    CHECK_THROWS_WITH(parse_config("[[stage]]\nname='a'\niteratons = 3\n", "x.toml"),
                      Catch::Contains("unknown key 'stage.iteratons'") && Catch::Contains("'iterations'"));
    CHECK_THROWS_WITH(parse_config("[mocco]\nqueue = 3\n", "x.toml"), Catch::Contains("did you mean 'moco.queue'"));
    CHECK_THROWS_WITH(parse_config("[model]\nwidth = \"wide\"\n", "x.toml"), Catch::Contains("model.width should be a number"));
    CHECK_THROWS_WITH(parse_config("[model\nwidth = 1\n", "x.toml"), Catch::Contains("x.toml:1"));
}

TEST_CASE("non-ASCII text is welcome in string values and comments, and refused where toml++ 3.3 misreads it", "[config]") {
    // Accepted: a path and a stage name with accents, comments in any language, arrays of strings.
    const RunConfig c = parse_config("# données médicales\n[run]\nname = \"rétine\" # é\n[[stage]]\nname = 'é'\n"
                                     "data = \"/home/josé/images\"\niterations = 2\n",
                                     "x.toml");
    CHECK(c.run.name == "rétine");
    CHECK(c.stages.at(0).data == "/home/josé/images");
    // Refused, naming the place (toml++ 3.3 reaches __builtin_unreachable on most of these).
    CHECK_THROWS_WITH(parse_config("[model]\nwidth = 1\nn\u00e9 = 2\n", "x.toml"),
                      Catch::Contains("x.toml:3:2") && Catch::Contains("outside a string or comment"));
    CHECK_THROWS_WITH(parse_config("[run]\n\"é\" = 1\n", "x.toml"), Catch::Contains("x.toml:2") && Catch::Contains("quoted key"));
    CHECK_THROWS_WITH(parse_config("[\"é\"]\n", "x.toml"), Catch::Contains("quoted key"));
    CHECK_THROWS_WITH(parse_config("[run]\nname = \"a\\é\"\n", "x.toml"), Catch::Contains("after a backslash"));
    CHECK_THROWS_WITH(parse_config("[run]\nname = \"\"\"a \\\n   é\"\"\"\n", "x.toml"),
                      Catch::Contains("x.toml:3") && Catch::Contains("line-ending backslash"));
    // A table name that cannot start a key is a parse error naming the line (toml++ 3.3 asserts
    // there instead: an abort in a debug build).
    CHECK_THROWS_WITH(parse_config("[)moco]\n", "x.toml"), Catch::Contains("x.toml:1"));
}

TEST_CASE("numbers are finite, stage names are folder names, run.out is named", "[config]") {
    auto refused = [](const std::string& set, const std::string& what) {
        RunConfig c = parse_config(kToml, "demo.toml");
        apply_override(c, set);
        CHECK_THROWS_WITH(validate(c), Catch::Contains(what));
    };
    refused("moco.temperature=inf", "moco.temperature = inf: must be a finite number");
    refused("stage.base.lr=nan", "stage.base.lr = nan: must be a finite number");
    refused("run.out=", "run.out is empty");
    refused("model.proj_dim=0", "model.proj_dim = 0: must be at least 1");
    refused("moco.bn_groups=-1", "moco.bn_groups = -1");
    refused("run.device=gpu", "run.device = 'gpu'");
    refused("run.load_size=-1", "run.load_size = -1");
    RunConfig neg = parse_config(kToml, "demo.toml");
    CHECK_THROWS_WITH(apply_override(neg, "run.seed=-1"), Catch::Contains("'-1' is negative"));
    for (const char* name : {"../../escaped", ".", "..", "a/b", ""})
        refused(std::string("stage.0.name=") + name, "a stage name is a folder name");
    RunConfig ok = parse_config(kToml, "demo.toml");
    apply_override(ok, "stage.0.name=base-1.v2_x");
    apply_override(ok, "run.load_size=64");  // image files resized on load (mixed sizes)
    CHECK(ok.run.load_size == 64);
    validate(ok);
}

TEST_CASE("--set overrides any value, by stage name or index", "[config]") {
    RunConfig c = parse_config(kToml, "demo.toml");
    apply_override(c, "model.width=0.25");
    apply_override(c, "stage.target.iterations=500");
    apply_override(c, "stage.0.lr=0.1");
    apply_override(c, "stage.target.eval_data=a,b");
    apply_override(c, "eval.knn=false");
    CHECK(c.model.width == 0.25);
    CHECK(c.stages[1].iterations == 500);
    CHECK(c.stages[0].lr == 0.1);
    CHECK(c.stages[1].eval_data == std::vector<std::string>{"a", "b"});
    CHECK_FALSE(c.eval.knn);
    CHECK_THROWS_WITH(apply_override(c, "modle.width=1"), Catch::Contains("did you mean 'model.width'"));
    CHECK_THROWS_WITH(apply_override(c, "stage.tagret.iterations=1"), Catch::Contains("did you mean 'target'"));
    // A stage key without its stage, a key in the wrong section: the last part is matched.
    CHECK_THROWS_WITH(apply_override(c, "run.seed=18446744073709551615"), Catch::Contains("out of range"));  // was -1 in config.json
    // A list in TOML's form, as --print-config prints it, was split at commas into '["a"' and '"b"]'.
    RunConfig l = c;
    apply_override(l, "stage.0.eval_data=[\"x y\", \"b,c\"]");
    CHECK(l.stages[0].eval_data == std::vector<std::string>{"x y", "b,c"});
    apply_override(l, "stage.0.eval_data=p,q");
    CHECK(l.stages[0].eval_data == std::vector<std::string>{"p", "q"});
    CHECK_THROWS_WITH(apply_override(l, "stage.0.eval_data=[1]"), Catch::Contains("not a string"));
    // HPT-BN from random init trained BN on random convolutions, silently.
    l.stages[0].trainable = "bn";
    l.stages[0].init = "random";
    CHECK_THROWS_WITH(validate(l), Catch::Contains("trainable = 'bn' (HPT-BN)"));
    CHECK_THROWS_WITH(apply_override(c, "iterations=5"), Catch::Contains("did you mean 'stage.<name>.iterations'"));
    CHECK_THROWS_WITH(parse_config("seed = 3\n", "x.toml"), Catch::Contains("did you mean 'run.seed'"));
    // No suggestion that is no nearer than any other word ('gloo' drew 'auto').
    c.dist.backend = "gloo";
    CHECK_THROWS_WITH(validate(c), Catch::Contains("dist.backend = 'gloo'") && !Catch::Contains("did you mean"));
    c.dist.backend = "auto";
    CHECK_THROWS_WITH(apply_override(c, "model.width=abc"), Catch::Contains("not a valid number"));
    CHECK_THROWS_WITH(apply_override(c, "stage.target.batch=12x"), Catch::Contains("trailing characters"));
    CHECK_THROWS_WITH(apply_override(c, "novalue"), Catch::Contains("expected key=value"));
}

TEST_CASE("validation names the offending key", "[config]") {
    RunConfig c = parse_config(kToml, "demo.toml");
    c.stages[1].policy = "ful";
    CHECK_THROWS_WITH(validate(c), Catch::Contains("policy = 'ful' (full, no_gray") && Catch::Contains("did you mean 'full'"));
    c = parse_config(kToml, "demo.toml");
    c.moco.queue = 1000;
    CHECK_THROWS_WITH(validate(c), Catch::Contains("not divisible by the batch"));
    c = parse_config(kToml, "demo.toml");
    c.stages[0].init = "previous";
    CHECK_THROWS_WITH(validate(c), Catch::Contains("first stage"));
    c = parse_config(kToml, "demo.toml");
    c.stages[1].data = "";
    CHECK_THROWS_WITH(validate(c), Catch::Contains("no data"));
}

TEST_CASE("every augmentation parameter and strict data loading are config keys", "[config]") {
    const RunConfig c = parse_config(std::string(kToml) + R"(
[augment]
crop_min_scale = 0.3
crop_max_scale = 0.9
crop_ratio_min = 0.5
crop_ratio_max = 2.0
crop_attempts = 4
blur_radius_sigmas = 2.5
hue = 0.1
)", "demo.toml");
    CHECK(c.augment.crop_min_scale == 0.3);
    CHECK(c.augment.crop_max_scale == 0.9);
    CHECK(c.augment.crop_ratio_min == 0.5);
    CHECK(c.augment.crop_ratio_max == 2.0);
    CHECK(c.augment.crop_attempts == 4);
    CHECK(c.augment.blur_radius_sigmas == 2.5);
    CHECK(c.augment.hue == 0.1);
    CHECK_FALSE(c.run.strict_data);
    RunConfig s = c;
    apply_override(s, "run.strict_data=true");
    CHECK(s.run.strict_data);
    validate(c);
    RunConfig bad = c;
    bad.augment.crop_max_scale = 0.1;  // below crop_min_scale
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("augment.crop_max_scale"));
    bad = c;
    bad.eval.knn_k = 0;
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("eval.knn_k"));
    bad = c;
    bad.eval.probe_epochs = 0;
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("eval.probe_epochs"));
    // The augmentation's own limits stop a config before any data loads (the blur radius was
    // checked only when the loader started).
    bad = c;
    bad.augment.blur_sigma_max = 1e9;
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("[augment]") && Catch::Contains("blur radius"));
    bad = c;
    bad.augment.hue = 0.7;
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("hue 0.7"));
    bad = c;
    bad.stages[0].image_size = -3;
    CHECK_THROWS_WITH(validate(bad), Catch::Contains("image_size = -3"));
}

TEST_CASE("a config survives the JSON round trip of checkpoint manifests", "[config]") {
    const RunConfig c = parse_config(kToml, "demo.toml");
    const RunConfig d = from_json(to_json(c));
    CHECK(to_json(d).dump() == to_json(c).dump());
    CHECK(d.stages[1].eval_data == c.stages[1].eval_data);
}

TEST_CASE("train --print-config's TOML reads back to the same config, every key included", "[config]") {
    RunConfig c = parse_config(kToml, "demo.toml");
    c.run.name = "quote \" backslash \\ tab \t del \x7f caf\xc3\xa9";  // every kind of character a string escapes
    c.moco.momentum = 0.99;  // printed as 0.99, not 0.98999999999999999
    c.augment.crop_ratio_max = 4.0 / 3.0;
    c.dist.timeout_s = 300;  // an integral double stays a float: "300.0"
    c.run.seed = 9223372036854775807ull;
    c.stages[0].lr = 0;  // a 0 that stands for something says what, in a comment
    const std::string text = to_toml(c);
    CHECK_THAT(text, Catch::Contains("lr = 0.0  # 0: 0.03 * batch / 256 = "));
    CHECK_THAT(text, Catch::Contains("momentum = 0.99\n") && Catch::Contains("timeout_s = 300.0\n"));
    for (const std::string& k : known_keys()) {
        const std::string leaf = k.substr(k.rfind('.') + 1);
        CHECK_THAT(text, Catch::Contains("\n" + leaf + " = "));
    }
    const RunConfig d = parse_config(text, "printed.toml");
    CHECK(to_json(d).dump() == to_json(c).dump());
}

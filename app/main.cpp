// ltlab: without a subcommand, the workbench; with one, headless work.

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "ltlab/runtime.h"
#include "ltlab_version.h"

namespace {

constexpr const char* kUsage = R"(Usage: ltlab [FILE...]            open the workbench (with run files; none: the last session's)
       ltlab COMMAND [options]     run headless

Commands:
  analyze FILE   neural collapse, FDR, cone effect, logit adjustment of a snapshot
  figures FILE   the workbench's figures (PDF/SVG/PNG + CSV) without a window
  inspect CKPT   what a PyTorch/safetensors checkpoint holds: tensors, architecture, classifier
  import CKPT... evaluate checkpoints (PyTorch, TorchScript) on a dataset into a run file
  synth          write a synthetic long-tailed run file
  train          train a recipe (ce, ce-wd, wb, wd-fr-etf) on long-tailed data into a run file
  stage2 FILE    weight balancing's stage 2 on a snapshot's frozen features, as a new snapshot
  cone-lab       the cone effect through a seeded random network (ReLU, normalisation), per layer
  layers MODEL   cone effect, FDR, sparsity and batch norm after every block of a network (images or noise)
  recipes        list the training recipes and their defaults
  benchmark-training  training throughput of a model, in images/s
  info           version, BLAS and threads (--measure-dgemm: the GEMM rate)
  help           this text

Options:
  -h, --help     this text (COMMAND --help: that command's options)
  --version      print the version
  --screenshot FILE  (with run files) render the workbench once into FILE (PNG) and exit
  --no-session   open the workbench without the last session's runs (files given open instead of them)

Run files are HDF5; their layout is in docs/run-format.md (any framework can write them:
tools/python/ltlab_export.py, docs/exporter.md).
)";

} // namespace

int main(int argc, char** argv) {
    using namespace ltlab::app;
    ltlab::selectBlasKernel(); // before any BLAS call, whatever the command (train's libtorch shares the library)
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return runWorkbench(argc, argv);
    const std::string& first = args.front();
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (first == "-h" || first == "--help" || first == "help") {
        std::cout << kUsage;
        return kExitOk;
    }
    if (first == "--version") {
        std::cout << "ltlab " << LTLAB_VERSION << "\n";
        return kExitOk;
    }
    if (first == "analyze") return runAnalyze(rest);
    if (first == "synth") return runSynth(rest);
    if (first == "info") return runInfo(rest);
    if (first == "train") return runTrain(rest);
    if (first == "recipes") return runRecipes(rest);
    if (first == "benchmark-training") return runBenchmarkTraining(rest);
    if (first == "figures") return runFigures(rest);
    if (first == "inspect") return runInspect(rest);
    if (first == "import") return runImport(rest);
    if (first == "stage2") return runStage2(rest);
    if (first == "cone-lab") return runConeLab(rest);
    if (first == "layers") return runLayers(rest);
    if (first.rfind("-", 0) == 0 && first.rfind("--screenshot", 0) != 0 && first != "--no-session") {
        std::cerr << "ltlab: unknown option '" << first << "' (see ltlab --help)\n";
        return kExitUsage;
    }
    // Anything else is files (or workbench options) for the GUI; a word that
    // is no file and looks like a mistyped command is caught before a window opens.
    std::error_code ec;
    if (!std::filesystem::exists(first, ec) && first.find('.') == std::string::npos &&
        first.find('/') == std::string::npos && first.rfind("-", 0) != 0) {
        std::cerr << "ltlab: unknown command '" << first << "' (see ltlab --help)\n";
        return kExitUsage;
    }
    return runWorkbench(argc, argv);
}

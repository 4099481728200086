#pragma once
// ltlab's subcommands. Each returns the process exit code: 0 success,
// 1 usage error, 2 unreadable or invalid input.

#include <string>
#include <vector>

namespace ltlab {
struct ImportConfig;
namespace cli {
class Args;
}
} // namespace ltlab

namespace ltlab::app {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitInput = 2;

int runAnalyze(const std::vector<std::string>& args);
int runSynth(const std::vector<std::string>& args);
int runInfo(const std::vector<std::string>& args);
int runTrain(const std::vector<std::string>& args);
int runRecipes(const std::vector<std::string>& args);
int runBenchmarkTraining(const std::vector<std::string>& args);
int runFigures(const std::vector<std::string>& args);
int runInspect(const std::vector<std::string>& args);
int runImport(const std::vector<std::string>& args);
int runStage2(const std::vector<std::string>& args);
int runConeLab(const std::vector<std::string>& args);
int runLayers(const std::vector<std::string>& args);
// The options that say how to build and feed a checkpoint's model, shared by
// `ltlab import` and `ltlab layers`: --data-dir, --device, --threads,
// --imbalance, --arch, --mean, --std, --resize, --crop, --features-module,
// --classifier (import_command.cpp).
void readModelOptions(const cli::Args& args, ImportConfig& config);
// Loads the Qt workbench module and runs its event loop.
int runWorkbench(int argc, char** argv);

// Runs `body`, turning ltlab's exceptions into messages on stderr and exit codes.
template <typename Body>
int guarded(const char* command, Body&& body);

} // namespace ltlab::app

#include <exception>
#include <iostream>
#include <new>

#include "ltlab/error.h"

template <typename Body>
int ltlab::app::guarded(const char* command, Body&& body) {
    try {
        return body();
    } catch (const UsageError& e) { // messages never name the command: it is said here
        std::cerr << "ltlab " << command << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const InputError& e) {
        std::cerr << "ltlab " << command << ": " << e.what() << "\n";
        return kExitInput;
    } catch (const std::bad_alloc&) {
        std::cerr << "ltlab " << command << ": out of memory\n";
        return kExitInput;
    } catch (const std::exception& e) {
        std::cerr << "ltlab " << command << ": error: " << e.what() << "\n";
        return kExitInput;
    }
}

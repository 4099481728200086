#pragma once
// Shared pieces of the core tests.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ltlab::testing {

// A fresh folder per test, removed afterwards.
struct TempDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("ltlab_test_" + std::to_string(::getpid()) + "_" +
                                  ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    TempDir() { std::filesystem::create_directories(path); }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

} // namespace ltlab::testing

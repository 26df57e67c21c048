// A fresh directory under /tmp for one test, removed with everything in it afterwards.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& prefix = "sf-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        path = ::mkdtemp(&tmpl[0]);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

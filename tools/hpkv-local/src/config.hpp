// Command line and config file (JSON) options. Flags override the file; API
// keys from both are combined.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpkv {

struct Options {
    std::string host = "127.0.0.1";
    int port = 8788;
    std::vector<std::string> apiKeys;
    std::string dataDir;          // empty: in-memory only
    double rateLimit = 0;         // requests/s per API key, 0 = off
    bool fsync = false;
    std::int64_t tokenTtlSeconds = 7200;  // HPKV tokens live 2 h
    int maxThreads = 64;          // = max concurrent WebSocket connections
    std::uint64_t compactBytes = 8u << 20;
    std::string logLevel = "info";
    int upgradeDelayMs = 0;       // tests: pause after each upgrade answer (a loaded machine)
};

// Parses argv (and --config FILE). On error throws std::invalid_argument with
// a message for the user. Sets `help` for --help.
Options parseOptions(int argc, char** argv, bool& help);

const char* usageText();

}  // namespace hpkv

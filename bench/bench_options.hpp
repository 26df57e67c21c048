// The command-line flags loadgen and storm share: where the server is and what the clients and
// the publisher do. Each tool keeps its own Options struct (and its own defaults); this fills the
// members both structs name alike.
#pragma once

#include <cstdlib>
#include <string>

namespace bench {

// Takes flag `a` if it is a shared one (its value from next()) and returns true; false otherwise.
template <class Options, class Next>
bool parseSharedOption(const std::string& a, Next&& next, Options& o) {
    if (a == "--host") o.host = next();
    else if (a == "--port") o.port = std::atoi(next());
    else if (a == "--control") o.controlPort = std::atoi(next());
    else if (a == "--ns") o.ns = next();
    else if (a == "--topic") o.topic = next();
    else if (a == "--conns") o.conns = std::atoi(next());
    else if (a == "--rate") o.rate = std::atof(next());
    else if (a == "--batch") o.batch = std::atoi(next());
    else if (a == "--payload") o.payload = std::atoi(next());
    else if (a == "--max-pending") o.maxPending = std::atoi(next());
    else if (a == "--server-pid") o.serverPid = std::atoi(next());
    else if (a == "--label") o.label = next();
    else return false;
    return true;
}

// Walks argv: a shared flag fills o, any other goes to toolOption(a, next, o), which returns
// false for one it does not know; an unknown flag or a missing value calls usage().
template <class Options, class ToolOption>
Options parseOptions(int argc, char** argv, void (*usage)(), ToolOption&& toolOption) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (!parseSharedOption(a, next, o) && !toolOption(a, next, o)) usage();
    }
    return o;
}

}  // namespace bench

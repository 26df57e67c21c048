#include "config.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace hpkv {
namespace {

std::int64_t toInt(const std::string& flag, const std::string& v, std::int64_t lo, std::int64_t hi) {
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || n < lo || n > hi)
        throw std::invalid_argument(flag + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return n;
}

double toDouble(const std::string& flag, const std::string& v) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(d >= 0) || d > 1e9) throw std::invalid_argument(flag + ": expected a number >= 0, got '" + v + "'");
    return d;
}

void loadConfigFile(const std::string& path, Options& o) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("--config: cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    Poco::JSON::Object::Ptr obj;
    try {
        Poco::JSON::Parser parser;
        obj = parser.parse(ss.str()).extract<Poco::JSON::Object::Ptr>();
    } catch (const std::exception& e) {
        throw std::invalid_argument("--config: " + path + " is not a JSON object");
    }
    try {
        for (const auto& name : obj->getNames()) {
            if (name == "host") o.host = obj->getValue<std::string>(name);
            else if (name == "port") o.port = static_cast<int>(toInt("port", obj->get(name).toString(), 0, 65535));
            else if (name == "apiKeys") {
                auto arr = obj->getArray(name);
                if (!arr) throw std::invalid_argument("apiKeys must be an array of strings");
                for (std::size_t i = 0; i < arr->size(); ++i) o.apiKeys.push_back(arr->getElement<std::string>(static_cast<unsigned>(i)));
            } else if (name == "data") o.dataDir = obj->getValue<std::string>(name);
            else if (name == "rateLimit") o.rateLimit = toDouble("rateLimit", obj->get(name).toString());
            else if (name == "fsync") o.fsync = obj->getValue<bool>(name);
            else if (name == "tokenTtlSeconds") o.tokenTtlSeconds = toInt("tokenTtlSeconds", obj->get(name).toString(), 1, 365LL * 86400);
            else if (name == "maxThreads") o.maxThreads = static_cast<int>(toInt("maxThreads", obj->get(name).toString(), 2, 4096));
            else if (name == "compactBytes") o.compactBytes = static_cast<std::uint64_t>(toInt("compactBytes", obj->get(name).toString(), 0, 1LL << 50));
            else if (name == "logLevel") o.logLevel = obj->getValue<std::string>(name);
            else throw std::invalid_argument("unknown setting '" + name + "'");
        }
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("--config " + path + ": " + e.what());
    } catch (const std::exception& e) {
        throw std::invalid_argument("--config " + path + ": wrong value type (" + e.what() + ")");
    }
}

}  // namespace

const char* usageText() {
    return "usage: hpkv-local [options]\n"
           "  --port P            listen port (0 = ephemeral; default 8788)\n"
           "  --host H            listen address (default 127.0.0.1)\n"
           "  --api-key KEY       accepted API key (repeatable; at least one required)\n"
           "  --data DIR          persist to DIR/hpkv.log (default: memory only)\n"
           "  --config FILE       JSON settings: host, port, apiKeys[], data, rateLimit, fsync,\n"
           "                      tokenTtlSeconds, maxThreads, compactBytes, logLevel\n"
           "  --rate-limit N      requests/s per API key, excess answered with code 429 (default off)\n"
           "  --fsync             fdatasync every log record before answering\n"
           "  --token-ttl S       subscription token lifetime in seconds (default 7200)\n"
           "  --max-threads N     worker threads = max concurrent connections (default 64)\n"
           "  --compact-bytes N   compact the log only once it is at least N bytes (default 8 MiB)\n"
           "  --log-level L       debug|info|warn|error (default info)\n"
           "  --upgrade-delay-ms N  tests only: pause each connection N ms after its upgrade\n"
           "                      answer, as a loaded machine may (default 0)\n";
}

Options parseOptions(int argc, char** argv, bool& help) {
    help = false;
    std::vector<std::string> args(argv + 1, argv + argc);
    Options o;
    // The config file is read first so that flags override it.
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--config") loadConfigFile(args[i + 1], o);

    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
            return args[++i];
        };
        if (a == "--help" || a == "-h") help = true;
        else if (a == "--config") value();
        else if (a == "--port") o.port = static_cast<int>(toInt(a, value(), 0, 65535));
        else if (a == "--host") o.host = value();
        else if (a == "--api-key") {
            std::string k = value();
            if (k.empty()) throw std::invalid_argument("--api-key must not be empty");
            o.apiKeys.push_back(k);
        } else if (a == "--data") o.dataDir = value();
        else if (a == "--rate-limit") o.rateLimit = toDouble(a, value());
        else if (a == "--fsync") o.fsync = true;
        else if (a == "--token-ttl") o.tokenTtlSeconds = toInt(a, value(), 1, 365LL * 86400);
        else if (a == "--max-threads") o.maxThreads = static_cast<int>(toInt(a, value(), 2, 4096));
        else if (a == "--compact-bytes") o.compactBytes = static_cast<std::uint64_t>(toInt(a, value(), 0, 1LL << 50));
        else if (a == "--log-level") o.logLevel = value();
        else if (a == "--upgrade-delay-ms") o.upgradeDelayMs = static_cast<int>(toInt(a, value(), 0, 60000));
        else throw std::invalid_argument("unknown option '" + a + "'");
    }
    if (!help && o.apiKeys.empty()) throw std::invalid_argument("at least one --api-key (or apiKeys in --config) is required");
    return o;
}

}  // namespace hpkv

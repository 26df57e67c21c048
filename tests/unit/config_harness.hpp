// What the config tests share: the smallest valid config, error expectations with their
// exact messages and marks, and a field-by-field comparison of two configs.
#pragma once
#include "config/loader.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace sf::configtest {

using namespace sf::config;


inline constexpr const char* kFile = "streamfence.yaml";

// Smallest valid config; line/column numbers in tests below count from this layout.
inline const std::string kMinimal =
    "servers:\n"            // 1
    "  s:\n"                // 2
    "    namespaces:\n"     // 3
    "      - path: /a\n"    // 4  ('path' at column 9)
    "        topics: [t]\n";  // 5

inline Config yaml(const std::string& text) { return loadString(text, kFile, Format::Yaml); }

inline std::vector<std::string> errorsOf(const std::string& text, Format format = Format::Yaml,
                                  const std::string& file = kFile) {
    try {
        loadString(text, file, format);
    } catch (const ConfigError& e) {
        return e.messages();
    }
    return {};
}

inline std::string dump(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += "\n  [" + s + "]";
    return out.empty() ? " (no errors)" : out;
}

// The config must fail with exactly this message among its errors.
inline void expectError(const std::string& text, const std::string& message, Format format = Format::Yaml) {
    auto errs = errorsOf(text, format);
    bool found = std::find(errs.begin(), errs.end(), message) != errs.end();
    CPPUNIT_ASSERT_MESSAGE("expected error [" + message + "], got:" + dump(errs), found);
}

// The config must fail with exactly one error, equal to message.
inline void expectOnlyError(const std::string& text, const std::string& message, Format format = Format::Yaml) {
    auto errs = errorsOf(text, format);
    CPPUNIT_ASSERT_MESSAGE("expected only [" + message + "], got:" + dump(errs),
                           errs.size() == 1 && errs[0] == message);
}

inline void expectNoErrors(const std::string& text, Format format = Format::Yaml) {
    auto errs = errorsOf(text, format);
    CPPUNIT_ASSERT_MESSAGE("expected no errors, got:" + dump(errs), errs.empty());
}

// kMinimal with extra server-level lines (indented 4) and extra namespace lines (indented 8).
inline std::string withServer(const std::string& serverLines, const std::string& nsLines = "") {
    return "servers:\n  s:\n" + serverLines + "    namespaces:\n      - path: /a\n        topics: [t]\n" + nsLines;
}
inline std::string withNs(const std::string& nsLines) { return withServer("", nsLines); }

inline std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline const std::string kSrc = SF_TEST_SOURCE_DIR;

// Field-by-field equality of everything the loader produces except marks and file name.
inline void assertSameConfig(const Config& a, const Config& b) {
    CPPUNIT_ASSERT_EQUAL(a.pluginDir, b.pluginDir);
    CPPUNIT_ASSERT_EQUAL(a.logLevel, b.logLevel);
    CPPUNIT_ASSERT(a.metricsSinks == b.metricsSinks);
    CPPUNIT_ASSERT_EQUAL(a.pluginOptions.size(), b.pluginOptions.size());
    for (const auto& [name, o] : a.pluginOptions) {
        CPPUNIT_ASSERT(b.pluginOptions.count(name));
        CPPUNIT_ASSERT(o.flat == b.pluginOptions.at(name).flat);
        CPPUNIT_ASSERT_EQUAL(o.json, b.pluginOptions.at(name).json);
    }
    CPPUNIT_ASSERT_EQUAL(a.servers.size(), b.servers.size());
    for (size_t i = 0; i < a.servers.size(); ++i) {
        const ServerConfig& x = a.servers[i];
        const ServerConfig& y = b.servers[i];
        CPPUNIT_ASSERT_EQUAL(x.name, y.name);
        CPPUNIT_ASSERT_EQUAL(x.host, y.host);
        CPPUNIT_ASSERT_EQUAL(x.port, y.port);
        CPPUNIT_ASSERT(x.transport == y.transport);
        CPPUNIT_ASSERT(x.engineIoTransport == y.engineIoTransport);
        CPPUNIT_ASSERT(x.auth == y.auth);
        CPPUNIT_ASSERT_EQUAL(x.spillRootPath, y.spillRootPath);
        CPPUNIT_ASSERT_EQUAL(x.tls.has_value(), y.tls.has_value());
        if (x.tls) {
            CPPUNIT_ASSERT_EQUAL(x.tls->certChainPemPath, y.tls->certChainPemPath);
            CPPUNIT_ASSERT_EQUAL(x.tls->privateKeyPemPath, y.tls->privateKeyPemPath);
            CPPUNIT_ASSERT_EQUAL(x.tls->privateKeyPassword, y.tls->privateKeyPassword);
            CPPUNIT_ASSERT_EQUAL(x.tls->protocol, y.tls->protocol);
            CPPUNIT_ASSERT_EQUAL(x.tls->watchIntervalMs, y.tls->watchIntervalMs);
        }
        CPPUNIT_ASSERT_EQUAL(x.path, y.path);
        CPPUNIT_ASSERT_EQUAL(x.pingIntervalMs, y.pingIntervalMs);
        CPPUNIT_ASSERT_EQUAL(x.pingTimeoutMs, y.pingTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(x.maxPayloadBytes, y.maxPayloadBytes);
        CPPUNIT_ASSERT_EQUAL(x.ioThreads, y.ioThreads);
        CPPUNIT_ASSERT(x.corsOrigins == y.corsOrigins);
        CPPUNIT_ASSERT_EQUAL(x.tokenValidator, y.tokenValidator);
        CPPUNIT_ASSERT_EQUAL(x.authRateLimit.windowMs, y.authRateLimit.windowMs);
        CPPUNIT_ASSERT_EQUAL(x.authRateLimit.maxFailures, y.authRateLimit.maxFailures);
        CPPUNIT_ASSERT_EQUAL(x.control.enabled, y.control.enabled);
        CPPUNIT_ASSERT_EQUAL(x.control.host, y.control.host);
        CPPUNIT_ASSERT_EQUAL(x.control.port, y.control.port);
        CPPUNIT_ASSERT_EQUAL(x.control.token, y.control.token);
        CPPUNIT_ASSERT_EQUAL(x.namespaces.size(), y.namespaces.size());
        for (size_t j = 0; j < x.namespaces.size(); ++j) {
            const NamespaceConfig& n = x.namespaces[j];
            const NamespaceConfig& m = y.namespaces[j];
            CPPUNIT_ASSERT_EQUAL(n.path, m.path);
            CPPUNIT_ASSERT(n.topics == m.topics);
            CPPUNIT_ASSERT(n.deliveryMode == m.deliveryMode);
            CPPUNIT_ASSERT_EQUAL(n.overflowAction, m.overflowAction);
            CPPUNIT_ASSERT_EQUAL(n.maxQueuedMessagesPerClient, m.maxQueuedMessagesPerClient);
            CPPUNIT_ASSERT_EQUAL(n.maxQueuedBytesPerClient, m.maxQueuedBytesPerClient);
            CPPUNIT_ASSERT_EQUAL(n.ackTimeoutMs, m.ackTimeoutMs);
            CPPUNIT_ASSERT_EQUAL(n.maxRetries, m.maxRetries);
            CPPUNIT_ASSERT_EQUAL(n.coalesce, m.coalesce);
            CPPUNIT_ASSERT_EQUAL(n.coalesceKey, m.coalesceKey);
            CPPUNIT_ASSERT_EQUAL(n.allowPolling, m.allowPolling);
            CPPUNIT_ASSERT_EQUAL(n.maxInFlight, m.maxInFlight);
            CPPUNIT_ASSERT_EQUAL(n.authRequired, m.authRequired);
            CPPUNIT_ASSERT_EQUAL(n.spillBackend, m.spillBackend);
        }
    }
}


}  // namespace sf::configtest

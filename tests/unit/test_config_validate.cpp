// Config validation (validate.cpp): the semantic rules with their exact messages and
// marks, on loaded files and on configs built in code.
#include <cppunit/extensions/HelperMacros.h>

#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

class ConfigValidateTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConfigValidateTest);
    CPPUNIT_TEST(tlsRules);
    CPPUNIT_TEST(positiveLimits);
    CPPUNIT_TEST(atLeastOnceRules);
    CPPUNIT_TEST(maxInFlightNormalised);
    CPPUNIT_TEST(duplicatesAndBlankTopics);
    CPPUNIT_TEST(authRules);
    CPPUNIT_TEST(serverPathAndStrings);
    CPPUNIT_TEST(portClashes);
    CPPUNIT_TEST(connectionStateRecovery);
    CPPUNIT_TEST(controlOffLoopbackNeedsToken);
    CPPUNIT_TEST(limitsBlock);
    CPPUNIT_TEST(validateBuiltInCode);
    CPPUNIT_TEST(noFollowUpErrors);
    CPPUNIT_TEST_SUITE_END();

public:
    void tlsRules() {
        expectOnlyError(withServer("    tls: {privateKeyPemPath: k.pem}\n"),
                        "streamfence.yaml:3:5: servers.s.tls.certChainPemPath: certChainPemPath is required");
        expectError(withServer("    tls:\n      certChainPemPath: \"\"\n      privateKeyPemPath: k\n"),
                    "streamfence.yaml:4:7: servers.s.tls.certChainPemPath: certChainPemPath is required");
        expectOnlyError(withServer("    tls: {certChainPemPath: c.pem}\n"),
                        "streamfence.yaml:3:5: servers.s.tls.privateKeyPemPath: privateKeyPemPath is required");
        expectOnlyError(withServer("    transport: WSS\n"),
                        "streamfence.yaml:3:5: servers.s.transport: transport WSS requires a tls section "
                        "(certChainPemPath, privateKeyPemPath)");
        // Blank protocol means the default; an empty password means none.
        Config c = yaml(withServer("    tls: {certChainPemPath: c, privateKeyPemPath: k, protocol: '', privateKeyPassword: ''}\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.3"), c.servers[0].tls->protocol);
        CPPUNIT_ASSERT(c.servers[0].tls->privateKeyPassword.empty());
        expectOnlyError(withServer("    tls: {certChainPemPath: c, privateKeyPemPath: k, watchIntervalMs: 0}\n"),
                        "streamfence.yaml:3:54: servers.s.tls.watchIntervalMs: watchIntervalMs must be positive");
    }

    void positiveLimits() {
        expectOnlyError(withNs("        maxQueuedMessagesPerClient: 0\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].maxQueuedMessagesPerClient: maxQueuedMessagesPerClient must be positive");
        expectOnlyError(withNs("        maxQueuedBytesPerClient: -5\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].maxQueuedBytesPerClient: maxQueuedBytesPerClient must be positive");
        expectOnlyError(withNs("        ackTimeoutMs: 0\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].ackTimeoutMs: ackTimeoutMs must be positive");
        expectOnlyError(withNs("        maxRetries: -1\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].maxRetries: maxRetries must be zero or positive");
        expectOnlyError(withServer("    pingIntervalMs: 0\n"), "streamfence.yaml:3:5: servers.s.pingIntervalMs: pingIntervalMs must be positive");
        expectOnlyError(withServer("    pingTimeoutMs: -1\n"), "streamfence.yaml:3:5: servers.s.pingTimeoutMs: pingTimeoutMs must be positive");
        expectOnlyError(withServer("    maxPayloadBytes: 0\n"), "streamfence.yaml:3:5: servers.s.maxPayloadBytes: maxPayloadBytes must be positive");
        expectOnlyError(withServer("    authRateLimit: {windowMs: 0}\n"),
                        "streamfence.yaml:3:21: servers.s.authRateLimit.windowMs: windowMs must be positive");
        expectOnlyError(withServer("    authRateLimit: {maxFailures: 0}\n"),
                        "streamfence.yaml:3:21: servers.s.authRateLimit.maxFailures: maxFailures must be positive");
        expectNoErrors(withNs("        maxRetries: 0\n"));
    }

    void atLeastOnceRules() {
        const std::string alo = "        deliveryMode: AT_LEAST_ONCE\n";
        expectNoErrors(withNs(alo + "        maxRetries: 1\n"));
        expectNoErrors(withNs(alo + "        maxRetries: 1\n        overflowAction: SPILL_TO_DISK\n"));
        expectOnlyError(withNs(alo + "        maxRetries: 1\n        overflowAction: DROP_OLDEST\n"),
                        "streamfence.yaml:8:9: servers.s.namespaces[0].overflowAction: AT_LEAST_ONCE namespaces must use "
                        "REJECT_NEW or SPILL_TO_DISK overflowAction");
        expectOnlyError(withNs(alo + "        maxRetries: 1\n        coalesce: true\n"),
                        "streamfence.yaml:8:9: servers.s.namespaces[0].coalesce: AT_LEAST_ONCE namespaces cannot enable coalescing");
        expectOnlyError(withNs(alo + "        maxRetries: 0\n"),
                        "streamfence.yaml:7:9: servers.s.namespaces[0].maxRetries: AT_LEAST_ONCE namespaces must allow at least one retry");
        // The default maxRetries (0) fails, as in streamfence-js; the mark is the namespace.
        expectOnlyError(withNs(alo),
                        "streamfence.yaml:4:9: servers.s.namespaces[0].maxRetries: AT_LEAST_ONCE namespaces must allow "
                        "at least one retry (maxRetries defaults to 0)");
        expectOnlyError(withNs(alo + "        maxRetries: 1\n        maxQueuedMessagesPerClient: 2\n        maxInFlight: 3\n"),
                        "streamfence.yaml:9:9: servers.s.namespaces[0].maxInFlight: maxInFlight must not exceed maxQueuedMessagesPerClient");
        expectNoErrors(withNs(alo + "        maxRetries: 1\n        maxQueuedMessagesPerClient: 3\n        maxInFlight: 3\n"));
        // The same settings are fine for BEST_EFFORT.
        expectNoErrors(withNs("        overflowAction: DROP_OLDEST\n        coalesce: true\n        maxQueuedMessagesPerClient: 2\n        maxInFlight: 3\n"));
        // All four at once are all reported.
        auto errs = errorsOf(withNs(alo + "        overflowAction: COALESCE\n        coalesce: true\n"
                                          "        maxQueuedMessagesPerClient: 1\n        maxInFlight: 2\n"));
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(4), errs.size());
    }

    void maxInFlightNormalised() {
        Config c = yaml(withNs("        maxInFlight: -5\n"));
        CPPUNIT_ASSERT_EQUAL(1, c.servers[0].namespaces[0].maxInFlight);
        c = yaml(withNs("        maxInFlight: 0\n"));
        CPPUNIT_ASSERT_EQUAL(1, c.servers[0].namespaces[0].maxInFlight);
        // Normalised first, then the AT_LEAST_ONCE rule: 0 -> 1 <= 1 passes.
        expectNoErrors(withNs("        deliveryMode: AT_LEAST_ONCE\n        maxRetries: 1\n"
                              "        maxQueuedMessagesPerClient: 1\n        maxInFlight: 0\n"));
    }

    void duplicatesAndBlankTopics() {
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: [t]\n"
                        "      - path: /a\n        topics: [u]\n",
                        "streamfence.yaml:6:9: servers.s.namespaces[1].path: Duplicate namespace path \"/a\" in server \"s\"");
        // The same path on two different servers is fine.
        expectNoErrors("servers:\n  s: {namespaces: [{path: /a, topics: [t]}]}\n  r: {namespaces: [{path: /a, topics: [t]}]}\n");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: [t, u, t]\n",
                        "streamfence.yaml:5:24: servers.s.namespaces[0].topics[2]: duplicate topic in namespace /a: t");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: [t, \" \"]\n",
                        "streamfence.yaml:5:21: servers.s.namespaces[0].topics[1]: topic names must not be blank in namespace /a");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: a\n        topics: [t]\n",
                        "streamfence.yaml:4:9: servers.s.namespaces[0].path: namespace path must start with '/'");
    }

    void authRules() {
        expectOnlyError(withServer("    auth: TOKEN\n"),
                        "streamfence.yaml:3:5: servers.s.auth: auth TOKEN requires tokenValidator (the name of a "
                        "token-validator plugin, e.g. static or jwt)");
        expectNoErrors(withServer("    auth: TOKEN\n    tokenValidator: static\n", "        authRequired: true\n"));
        expectOnlyError(withNs("        authRequired: true\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].authRequired: Auth cannot be required when auth "
                        "is NONE (set auth: TOKEN and a tokenValidator on server \"s\", or remove authRequired)");
        expectOnlyError(withServer("    tokenValidator: \"my validator\"\n"),
                        "streamfence.yaml:3:5: servers.s.tokenValidator: invalid token-validator plugin name \"my validator\" "
                        "(expected letters, digits, '_' or '-')");
    }

    void serverPathAndStrings() {
        expectOnlyError(withServer("    path: /socket.io\n"),
                        "streamfence.yaml:3:5: servers.s.path: path must start and end with '/' (e.g. /socket.io/)");
        expectOnlyError(withServer("    path: socket.io/\n"),
                        "streamfence.yaml:3:5: servers.s.path: path must start and end with '/' (e.g. /socket.io/)");
        expectNoErrors(withServer("    path: /\n"));
        expectOnlyError(withServer("    host: \"\"\n"), "streamfence.yaml:3:5: servers.s.host: host must not be blank");
        expectOnlyError(withServer("    spillRootPath: \"\"\n"),
                        "streamfence.yaml:3:5: servers.s.spillRootPath: spillRootPath must not be blank");
        expectOnlyError(withServer("    cors: {origins: [\"\"]}\n"),
                        "streamfence.yaml:3:22: servers.s.cors.origins[0]: origin must not be blank");
        // Plain numbers are fine where a string is expected (e.g. a numeric token).
        Config c = yaml(withServer("    control: {token: 12345}\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("12345"), c.servers[0].control.token);
    }

    void connectionStateRecovery() {
        CPPUNIT_ASSERT(!yaml(withServer("")).servers[0].recovery.enabled);  // absent = off, as socket.io
        Config on = yaml(withServer("    connectionStateRecovery: {}\n"));
        CPPUNIT_ASSERT(on.servers[0].recovery.enabled);
        CPPUNIT_ASSERT_EQUAL(int64_t(120000), on.servers[0].recovery.maxDisconnectionDurationMs);
        CPPUNIT_ASSERT(yaml(withServer("    connectionStateRecovery: true\n")).servers[0].recovery.enabled);
        CPPUNIT_ASSERT(!yaml(withServer("    connectionStateRecovery: false\n")).servers[0].recovery.enabled);
        Config ms = yaml(withServer("    connectionStateRecovery: {maxDisconnectionDurationMs: 5000}\n"));
        CPPUNIT_ASSERT_EQUAL(int64_t(5000), ms.servers[0].recovery.maxDisconnectionDurationMs);
        expectOnlyError(withServer("    connectionStateRecovery: {maxDisconnectionDurationMs: 0}\n"),
                        "streamfence.yaml:3:31: servers.s.connectionStateRecovery.maxDisconnectionDurationMs: "
                        "out of range: 0 (expected 1..604800000)");
        expectOnlyError(withServer("    connectionStateRecovery: {maxDisconnectionMs: 5}\n"),
                        "streamfence.yaml:3:31: servers.s.connectionStateRecovery.maxDisconnectionMs: unknown key "
                        "\"maxDisconnectionMs\" (expected one of: maxDisconnectionDurationMs)");
    }

    void portClashes() {
        expectOnlyError("servers:\n"
                        "  a: {port: 3000, namespaces: [{path: /a, topics: [t]}]}\n"
                        "  b: {host: 127.0.0.1, port: 3000, namespaces: [{path: /a, topics: [t]}]}\n",
                        "streamfence.yaml:3:24: servers.b.port: port 3000 is already used by servers.a.port");
        expectOnlyError(withServer("    port: 3000\n    control: {port: 3000}\n"),
                        "streamfence.yaml:4:15: servers.s.control.port: port 3000 is already used by servers.s.port");
        // Different specific hosts, or ephemeral ports, do not clash.
        expectNoErrors("servers:\n"
                       "  a: {host: 127.0.0.1, port: 3000, control: {port: 0}, namespaces: [{path: /a, topics: [t]}]}\n"
                       "  b: {host: 127.0.0.2, port: 3000, namespaces: [{path: /a, topics: [t]}]}\n"
                       "  c: {port: 0, namespaces: [{path: /a, topics: [t]}]}\n");
    }

    void controlOffLoopbackNeedsToken() {
        expectOnlyError(withServer("    control: {host: 0.0.0.0}\n"),
                        "streamfence.yaml:3:15: servers.s.control.host: control listener on non-loopback host \"0.0.0.0\" "
                        "requires a token (set control.token, or bind it to 127.0.0.1)");
        expectNoErrors(withServer("    control: {host: 0.0.0.0, token: tok}\n"));
        expectNoErrors(withServer("    control: {host: 127.0.0.2}\n"));
        expectNoErrors(withServer("    control: {host: \"::1\"}\n"));
        expectNoErrors(withServer("    control: {host: 10.0.0.1, enabled: false}\n"));
    }

    void limitsBlock() {
        expectOnlyError(withServer("    limits:\n      maxConnectionsPerAddress: -1\n"),
                        "streamfence.yaml:4:7: servers.s.limits.maxConnectionsPerAddress: out of range: -1 (expected 0..10000000)");
        expectOnlyError(withServer("    limits: {maxFramesPerMessage: 0}\n"),
                        "streamfence.yaml:3:14: servers.s.limits.maxFramesPerMessage: out of range: 0 (expected 1..1000000)");
        expectOnlyError(withServer("    limits: {addressTableSize: 4}\n"),
                        "streamfence.yaml:3:14: servers.s.limits.addressTableSize: out of range: 4 (expected 16..10000000)");
        expectOnlyError(withServer("    limits: {maxConnection: 5}\n"),
                        "streamfence.yaml:3:14: servers.s.limits.maxConnection: unknown key \"maxConnection\" (did you mean \"maxConnections\"?)");
        expectOnlyError(withServer("    control: {maxRequestsPerSecond: -5}\n"),
                        "streamfence.yaml:3:15: servers.s.control.maxRequestsPerSecond: out of range: -5 (expected 0..1000000)");
        expectOnlyError(withServer("    limits: {maxSessionsPerConnection: -1}\n"),
                        "streamfence.yaml:3:14: servers.s.limits.maxSessionsPerConnection: out of range: -1 (expected 0..1000000)");
        expectNoErrors(withServer("    limits: {maxConnections: 0, maxPendingPolls: 0, exemptLoopback: false, maxAttachmentsPerPacket: 0,\n"
                                  "             maxSessionsPerConnection: 0}\n"));
    }

    void validateBuiltInCode() {
        // What the embed builder does: plain structs, no file. Messages carry key paths only.
        Config c;
        CPPUNIT_ASSERT_EQUAL(std::string("servers: at least one server must be defined"), validate(c).at(0));
        ServerConfig s;
        s.name = "emb";
        NamespaceConfig ns;
        ns.path = "/x";
        ns.topics = {"t"};
        s.namespaces.push_back(ns);
        c.servers.push_back(s);
        CPPUNIT_ASSERT(validate(c).empty());
        NamespaceConfig& n = c.servers[0].namespaces[0];
        n.deliveryMode = DeliveryMode::AT_LEAST_ONCE;
        n.maxRetries = 2;
        n.maxQueuedMessagesPerClient = 1;
        n.maxInFlight = 0;  // treated as 1, so within the queue limit
        CPPUNIT_ASSERT(validate(c).empty());
        n.maxInFlight = 2;
        n.overflowAction = "DROP_OLDEST";
        c.servers[0].port = 70000;
        c.servers[0].transport = Transport::WSS;
        const std::vector<std::string> expected = {
            "servers.emb.transport: transport WSS requires a tls section (certChainPemPath, privateKeyPemPath)",
            "servers.emb.namespaces[0].overflowAction: AT_LEAST_ONCE namespaces must use REJECT_NEW or SPILL_TO_DISK overflowAction",
            "servers.emb.namespaces[0].maxInFlight: maxInFlight must not exceed maxQueuedMessagesPerClient",
        };
        c.servers[0].port = 1;
        auto errs = validate(c);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), expected.size(), errs.size());
        for (size_t i = 0; i < expected.size(); ++i) CPPUNIT_ASSERT_EQUAL(expected[i], errs[i]);
        c.servers[0].port = 70000;
        CPPUNIT_ASSERT_EQUAL(std::string("servers.emb.port: out of range: 70000 (expected 0..65535)"), validate(c).at(0));
        // A loaded config edited in code keeps the marks it has.
        Config loaded = yaml(kMinimal);
        loaded.servers[0].namespaces[0].path = "x";
        errs = validate(loaded);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(1), errs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:9: servers.s.namespaces[0].path: namespace path must start with '/'"), errs[0]);
    }

    void noFollowUpErrors() {
        // A value that could not be read is reported once, not again by the rules using it.
        expectOnlyError(withNs("        deliveryMode: AT_LEAST_ONCE\n        maxRetries: many\n"),
                        "streamfence.yaml:7:9: servers.s.namespaces[0].maxRetries: expected an integer, got \"many\"");
        expectOnlyError(withServer("    transport: WSS\n    tls: [a]\n"),
                        "streamfence.yaml:4:5: servers.s.tls: expected a map, got a list");
        expectOnlyError(withServer("    auth: TOKEN\n    tokenValidator: [a]\n"),
                        "streamfence.yaml:4:5: servers.s.tokenValidator: expected a string, got a list");
        expectOnlyError("servers:\n  s:\n", "streamfence.yaml:2:3: servers.s: missing required key \"namespaces\"");
        // Key paths stay aligned with the file when an earlier entry was unreadable.
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - 5\n      - path: /a\n        topics: [t]\n",
                        "streamfence.yaml:4:9: servers.s.namespaces[0]: expected a map, got \"5\"");
        auto errs = errorsOf("servers:\n  s:\n    namespaces:\n      - 5\n      - path: /a\n        topics: [t, \"\"]\n");
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(2), errs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:6:21: servers.s.namespaces[1].topics[1]: topic names must not be "
                                         "blank in namespace /a"),
                             errs[1]);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConfigValidateTest);

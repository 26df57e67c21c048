// Config loader (loader, schema, node reader): defaults, every key read, YAML and JSON
// alike, the shipped conf/ files, parse errors and type errors with their exact marks.
#include <cppunit/extensions/HelperMacros.h>

#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

class ConfigLoaderTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConfigLoaderTest);
    CPPUNIT_TEST(defaults);
    CPPUNIT_TEST(everyKeyIsRead);
    CPPUNIT_TEST(yamlAndJsonAreEquivalent);
    CPPUNIT_TEST(shippedConfigsLoad);
    CPPUNIT_TEST(enumErrors);
    CPPUNIT_TEST(overflowActionAcceptsPluginNames);
    CPPUNIT_TEST(missingRequiredKeys);
    CPPUNIT_TEST(unknownKeysWithHints);
    CPPUNIT_TEST(wrongTypes);
    CPPUNIT_TEST(integerRanges);
    CPPUNIT_TEST(collectsAllErrors);
    CPPUNIT_TEST(duplicateKeys);
    CPPUNIT_TEST(parseErrorsCarryMarks);
    CPPUNIT_TEST(strictJson);
    CPPUNIT_TEST(loadFileErrors);
    CPPUNIT_TEST(pluginOptionsFlattened);
    CPPUNIT_TEST(metricsSinks);
    CPPUNIT_TEST(garbageNeverCrashes);
    CPPUNIT_TEST_SUITE_END();

public:
    void defaults() {
        Config c = yaml(kMinimal);
        CPPUNIT_ASSERT_EQUAL(std::string(kFile), c.file);
        CPPUNIT_ASSERT_EQUAL(std::string(""), c.pluginDir);
        CPPUNIT_ASSERT_EQUAL(std::string("info"), c.logLevel);
        CPPUNIT_ASSERT(c.metricsSinks == std::vector<std::string>{"prometheus"});
        CPPUNIT_ASSERT(c.pluginOptions.empty());
        CPPUNIT_ASSERT_EQUAL(size_t(1), c.servers.size());
        const ServerConfig& s = c.servers[0];
        CPPUNIT_ASSERT_EQUAL(std::string("s"), s.name);
        CPPUNIT_ASSERT_EQUAL(std::string("0.0.0.0"), s.host);
        CPPUNIT_ASSERT_EQUAL(0, s.port);
        CPPUNIT_ASSERT(s.transport == Transport::WS);
        CPPUNIT_ASSERT(s.engineIoTransport == EngineIoTransport::WEBSOCKET_OR_POLLING);
        CPPUNIT_ASSERT(s.auth == AuthMode::NONE);
        CPPUNIT_ASSERT_EQUAL(std::string(".streamfence-spill"), s.spillRootPath);
        CPPUNIT_ASSERT(!s.tls.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("/socket.io/"), s.path);
        CPPUNIT_ASSERT_EQUAL(25000, s.pingIntervalMs);
        CPPUNIT_ASSERT_EQUAL(20000, s.pingTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(int64_t(1000000), s.maxPayloadBytes);
        CPPUNIT_ASSERT_EQUAL(0, s.ioThreads);
        CPPUNIT_ASSERT(s.corsOrigins.empty());
        CPPUNIT_ASSERT(s.tokenValidator.empty());
        CPPUNIT_ASSERT_EQUAL(60000, s.authRateLimit.windowMs);
        CPPUNIT_ASSERT_EQUAL(20, s.authRateLimit.maxFailures);
        CPPUNIT_ASSERT(!s.control.enabled);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:2:3: servers.s"), s.mark.str());
        CPPUNIT_ASSERT_EQUAL(size_t(1), s.namespaces.size());
        const NamespaceConfig& n = s.namespaces[0];
        CPPUNIT_ASSERT_EQUAL(std::string("/a"), n.path);
        CPPUNIT_ASSERT(n.topics == std::vector<std::string>{"t"});
        CPPUNIT_ASSERT(n.deliveryMode == DeliveryMode::BEST_EFFORT);
        CPPUNIT_ASSERT_EQUAL(std::string("REJECT_NEW"), n.overflowAction);
        CPPUNIT_ASSERT_EQUAL(64, n.maxQueuedMessagesPerClient);
        CPPUNIT_ASSERT_EQUAL(int64_t(524288), n.maxQueuedBytesPerClient);
        CPPUNIT_ASSERT_EQUAL(1000, n.ackTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(0, n.maxRetries);
        CPPUNIT_ASSERT(!n.coalesce);
        CPPUNIT_ASSERT(n.coalesceKey.empty());
        CPPUNIT_ASSERT(n.allowPolling);
        CPPUNIT_ASSERT_EQUAL(1, n.maxInFlight);
        CPPUNIT_ASSERT(!n.authRequired);
        CPPUNIT_ASSERT_EQUAL(std::string("disk"), n.spillBackend);
        // Defaulted values still point at their namespace entry, for later messages.
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:9: servers.s.namespaces[0]"), n.mark.str());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:9: servers.s.namespaces[0].overflowAction"),
                             n.overflowActionMark.str());
        // A control section that is present is enabled, with its defaults.
        Config c2 = yaml(withServer("    control: {}\n"));
        CPPUNIT_ASSERT(c2.servers[0].control.enabled);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), c2.servers[0].control.host);
        CPPUNIT_ASSERT_EQUAL(0, c2.servers[0].control.port);
        Config c3 = yaml(withServer("    control: {enabled: false, port: 9000}\n"));
        CPPUNIT_ASSERT(!c3.servers[0].control.enabled);
    }

    void everyKeyIsRead() {
        const std::string text =
            "pluginDir: /opt/plugins\n"
            "logLevel: debug\n"
            "metrics: {sinks: [prometheus, statsd]}\n"
            "servers:\n"
            "  a:\n"
            "    host: 127.0.0.1\n"
            "    port: 4000\n"
            "    transport: WSS\n"
            "    engineIoTransport: WEBSOCKET_ONLY\n"
            "    auth: TOKEN\n"
            "    tokenValidator: static\n"
            "    spillRootPath: /var/spill\n"
            "    tls: {certChainPemPath: c.pem, privateKeyPemPath: k.pem, privateKeyPassword: pw, protocol: TLSv1.2, watchIntervalMs: 500}\n"
            "    path: /rt/\n"
            "    pingIntervalMs: 1000\n"
            "    pingTimeoutMs: 2000\n"
            "    maxPayloadBytes: 5000000000\n"
            "    ioThreads: 4\n"
            "    cors: {origins: ['*', https://x.example]}\n"
            "    authRateLimit: {windowMs: 1000, maxFailures: 3}\n"
            "    control: {host: 0.0.0.0, port: 4001, token: tok}\n"
            "    namespaces:\n"
            "      - path: /n\n"
            "        topics: [x, y]\n"
            "        deliveryMode: AT_LEAST_ONCE\n"
            "        overflowAction: SPILL_TO_DISK\n"
            "        maxQueuedMessagesPerClient: 10\n"
            "        maxQueuedBytesPerClient: 100\n"
            "        ackTimeoutMs: 300\n"
            "        maxRetries: 2\n"
            "        coalesce: false\n"
            "        coalesceKey: id\n"
            "        allowPolling: false\n"
            "        maxInFlight: 5\n"
            "        authRequired: true\n"
            "        spillBackend: hpkv\n";
        Config c = yaml(text);
        CPPUNIT_ASSERT_EQUAL(std::string("/opt/plugins"), c.pluginDir);
        CPPUNIT_ASSERT_EQUAL(std::string("debug"), c.logLevel);
        CPPUNIT_ASSERT(c.metricsSinks == (std::vector<std::string>{"prometheus", "statsd"}));
        const ServerConfig& s = c.servers.at(0);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), s.host);
        CPPUNIT_ASSERT_EQUAL(4000, s.port);
        CPPUNIT_ASSERT(s.transport == Transport::WSS);
        CPPUNIT_ASSERT(s.engineIoTransport == EngineIoTransport::WEBSOCKET_ONLY);
        CPPUNIT_ASSERT(s.auth == AuthMode::TOKEN);
        CPPUNIT_ASSERT_EQUAL(std::string("static"), s.tokenValidator);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:11:5: servers.a.tokenValidator"), s.tokenValidatorMark.str());
        CPPUNIT_ASSERT_EQUAL(std::string("/var/spill"), s.spillRootPath);
        CPPUNIT_ASSERT(s.tls.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("c.pem"), s.tls->certChainPemPath);
        CPPUNIT_ASSERT_EQUAL(std::string("k.pem"), s.tls->privateKeyPemPath);
        CPPUNIT_ASSERT_EQUAL(std::string("pw"), s.tls->privateKeyPassword);
        CPPUNIT_ASSERT_EQUAL(std::string("TLSv1.2"), s.tls->protocol);
        CPPUNIT_ASSERT_EQUAL(500, s.tls->watchIntervalMs);
        CPPUNIT_ASSERT_EQUAL(std::string("/rt/"), s.path);
        CPPUNIT_ASSERT_EQUAL(1000, s.pingIntervalMs);
        CPPUNIT_ASSERT_EQUAL(2000, s.pingTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(int64_t(5000000000), s.maxPayloadBytes);
        CPPUNIT_ASSERT_EQUAL(4, s.ioThreads);
        CPPUNIT_ASSERT(s.corsOrigins == (std::vector<std::string>{"*", "https://x.example"}));
        CPPUNIT_ASSERT_EQUAL(1000, s.authRateLimit.windowMs);
        CPPUNIT_ASSERT_EQUAL(3, s.authRateLimit.maxFailures);
        CPPUNIT_ASSERT(s.control.enabled);
        CPPUNIT_ASSERT_EQUAL(std::string("0.0.0.0"), s.control.host);
        CPPUNIT_ASSERT_EQUAL(4001, s.control.port);
        CPPUNIT_ASSERT_EQUAL(std::string("tok"), s.control.token);
        const NamespaceConfig& n = s.namespaces.at(0);
        CPPUNIT_ASSERT_EQUAL(std::string("/n"), n.path);
        CPPUNIT_ASSERT(n.topics == (std::vector<std::string>{"x", "y"}));
        CPPUNIT_ASSERT(n.deliveryMode == DeliveryMode::AT_LEAST_ONCE);
        CPPUNIT_ASSERT_EQUAL(std::string("SPILL_TO_DISK"), n.overflowAction);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:26:9: servers.a.namespaces[0].overflowAction"),
                             n.overflowActionMark.str());
        CPPUNIT_ASSERT_EQUAL(10, n.maxQueuedMessagesPerClient);
        CPPUNIT_ASSERT_EQUAL(int64_t(100), n.maxQueuedBytesPerClient);
        CPPUNIT_ASSERT_EQUAL(300, n.ackTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(2, n.maxRetries);
        CPPUNIT_ASSERT(!n.coalesce);
        CPPUNIT_ASSERT_EQUAL(std::string("id"), n.coalesceKey);
        CPPUNIT_ASSERT(!n.allowPolling);
        CPPUNIT_ASSERT_EQUAL(5, n.maxInFlight);
        CPPUNIT_ASSERT(n.authRequired);
        CPPUNIT_ASSERT_EQUAL(std::string("hpkv"), n.spillBackend);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:36:9: servers.a.namespaces[0].spillBackend"),
                             n.spillBackendMark.str());
    }

    void yamlAndJsonAreEquivalent() {
        const std::string y =
            "logLevel: warn\n"
            "plugins:\n"
            "  jwt: {issuer: me, algorithms: [RS256, ES256], leeway: 30, nested: {on: true, none: null}}\n"
            "servers:\n"
            "  a:\n"
            "    port: 1\n"
            "    auth: TOKEN\n"
            "    tokenValidator: jwt\n"
            "    cors: {origins: [\"*\"]}\n"
            "    namespaces:\n"
            "      - {path: /x, topics: [t1, t2], deliveryMode: AT_LEAST_ONCE, maxRetries: 1, authRequired: true}\n"
            "  b:\n"
            "    port: 2\n"
            "    namespaces: [{path: /y, topics: [u], overflowAction: COALESCE, coalesce: true}]\n";
        const std::string j = R"({
  "logLevel": "warn",
  "plugins": {"jwt": {"issuer": "me", "algorithms": ["RS256", "ES256"], "leeway": 30, "nested": {"on": true, "none": null}}},
  "servers": {
    "a": {"port": 1, "auth": "TOKEN", "tokenValidator": "jwt", "cors": {"origins": ["*"]},
          "namespaces": [{"path": "/x", "topics": ["t1", "t2"], "deliveryMode": "AT_LEAST_ONCE", "maxRetries": 1, "authRequired": true}]},
    "b": {"port": 2, "namespaces": [{"path": "/y", "topics": ["u"], "overflowAction": "COALESCE", "coalesce": true}]}
  }
})";
        Config a = yaml(y);
        Config b = loadString(j, "streamfence.json", Format::Json);
        assertSameConfig(a, b);
        CPPUNIT_ASSERT_EQUAL(size_t(2), a.servers.size());
        CPPUNIT_ASSERT_EQUAL(std::string("b"), a.servers[1].name);
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"issuer":"me","algorithms":["RS256","ES256"],"leeway":30,"nested":{"on":true,"none":null}})"),
                             b.pluginOptions.at("jwt").json);
        // JSON marks are real too: "b" is on line 7, its opening quote at column 5.
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.json:7:5: servers.b"), b.servers[1].mark.str());
    }

    void shippedConfigsLoad() {
        Config y = loadFile(kSrc + "/conf/streamfence.yaml");
        Config j = loadFile(kSrc + "/conf/streamfence.json");
        assertSameConfig(y, j);
        const ServerConfig* s = findServer(y, "default");
        CPPUNIT_ASSERT(s);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), s->host);
        CPPUNIT_ASSERT_EQUAL(3000, s->port);
        CPPUNIT_ASSERT(s->engineIoTransport == EngineIoTransport::WEBSOCKET_OR_POLLING);
        CPPUNIT_ASSERT(s->control.enabled);
        CPPUNIT_ASSERT_EQUAL(3001, s->control.port);
        CPPUNIT_ASSERT_EQUAL(size_t(2), s->namespaces.size());
        CPPUNIT_ASSERT_EQUAL(std::string("/feed"), s->namespaces[0].path);
        CPPUNIT_ASSERT_EQUAL(std::string("DROP_OLDEST"), s->namespaces[0].overflowAction);
        CPPUNIT_ASSERT(s->namespaces[0].topics == (std::vector<std::string>{"prices", "news"}));
        CPPUNIT_ASSERT_EQUAL(std::string("/alerts"), s->namespaces[1].path);
        CPPUNIT_ASSERT(s->namespaces[1].deliveryMode == DeliveryMode::AT_LEAST_ONCE);
        CPPUNIT_ASSERT_EQUAL(3, s->namespaces[1].maxRetries);
        CPPUNIT_ASSERT_EQUAL(kSrc + "/conf/streamfence.yaml", y.file);
        // The examples must stay valid too.
        Config tls = loadFile(kSrc + "/conf/examples/tls.yaml");
        CPPUNIT_ASSERT(tls.servers.at(0).tls.has_value());
        Config jwt = loadFile(kSrc + "/conf/examples/auth-jwt.yaml");
        CPPUNIT_ASSERT_EQUAL(std::string("jwt"), jwt.servers.at(0).tokenValidator);
        CPPUNIT_ASSERT(jwt.pluginOptions.count("jwt"));
    }

    void enumErrors() {
        expectOnlyError(withServer("    transport: QUIC\n"),
                        "streamfence.yaml:3:5: servers.s.transport: Invalid transport \"QUIC\" (expected: WS, WSS)");
        expectOnlyError(withServer("    engineIoTransport: POLLING\n"),
                        "streamfence.yaml:3:5: servers.s.engineIoTransport: Invalid engineIoTransport \"POLLING\" "
                        "(expected: WEBSOCKET_ONLY, WEBSOCKET_OR_POLLING)");
        expectOnlyError(withServer("    auth: BASIC\n"),
                        "streamfence.yaml:3:5: servers.s.auth: Invalid auth \"BASIC\" (expected: NONE, TOKEN)");
        // Enum values are case-sensitive as in streamfence-js, with a hint.
        expectOnlyError(withServer("    transport: ws\n"),
                        "streamfence.yaml:3:5: servers.s.transport: Invalid transport \"ws\" (expected: WS, WSS) (did you mean \"WS\"?)");
        expectOnlyError(withNs("        deliveryMode: EXACTLY_ONCE\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].deliveryMode: Invalid deliveryMode \"EXACTLY_ONCE\" "
                        "for namespace /a (expected: BEST_EFFORT, AT_LEAST_ONCE)");
        expectOnlyError("logLevel: verbose\n" + kMinimal,
                        "streamfence.yaml:1:1: logLevel: Invalid logLevel \"verbose\" (expected: debug, info, warn, error)");
        expectOnlyError(withServer("    tls: {certChainPemPath: c, privateKeyPemPath: k, protocol: TLSv1.1}\n"),
                        "streamfence.yaml:3:54: servers.s.tls.protocol: Invalid protocol \"TLSv1.1\" (expected: TLSv1.2, TLSv1.3) (did you mean \"TLSv1.2\"?)");
    }

    void overflowActionAcceptsPluginNames() {
        for (const auto& builtin : builtinOverflowActions()) {
            Config c = yaml(withNs("        overflowAction: " + builtin + "\n"));
            CPPUNIT_ASSERT_EQUAL(builtin, c.servers[0].namespaces[0].overflowAction);
        }
        Config c = yaml(withNs("        overflowAction: my-policy_2\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("my-policy_2"), c.servers[0].namespaces[0].overflowAction);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:6:9: servers.s.namespaces[0].overflowAction"),
                             c.servers[0].namespaces[0].overflowActionMark.str());
        expectOnlyError(withNs("        overflowAction: \"drop it\"\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].overflowAction: Invalid overflowAction \"drop it\" "
                        "for namespace /a (expected: DROP_OLDEST, REJECT_NEW, COALESCE, SNAPSHOT_ONLY, SPILL_TO_DISK "
                        "or an overflow-policy plugin name)");
    }

    void missingRequiredKeys() {
        expectOnlyError("logLevel: info\n", "streamfence.yaml:1:1: missing required key \"servers\"");
        expectOnlyError("", "streamfence.yaml:1:1: the config is empty (expected a map with a \"servers\" key)");
        expectOnlyError("servers: {}\n", "streamfence.yaml:1:1: servers: at least one server must be defined");
        expectOnlyError("servers:\n  s:\n    port: 1\n", "streamfence.yaml:2:3: servers.s: missing required key \"namespaces\"");
        expectOnlyError("servers:\n  s:\n    namespaces: []\n",
                        "streamfence.yaml:3:5: servers.s.namespaces: StreamFenceServer requires at least one namespace");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - topics: [t]\n",
                        "streamfence.yaml:4:9: servers.s.namespaces[0]: missing required key \"path\"");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n",
                        "streamfence.yaml:4:9: servers.s.namespaces[0]: missing required key \"topics\"");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: []\n",
                        "streamfence.yaml:5:9: servers.s.namespaces[0].topics: namespace must define at least one topic");
    }

    void unknownKeysWithHints() {
        expectOnlyError(withServer("    pingIntervalMS: 100\n"),
                        "streamfence.yaml:3:5: servers.s.pingIntervalMS: unknown key \"pingIntervalMS\" "
                        "(did you mean \"pingIntervalMs\"?)");
        expectOnlyError(withNs("        overflowActon: DROP_OLDEST\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].overflowActon: unknown key \"overflowActon\" "
                        "(did you mean \"overflowAction\"?)");
        expectError("server:\n  s: {}\n",
                        "streamfence.yaml:1:1: server: unknown key \"server\" (did you mean \"servers\"?)");
        expectOnlyError(withServer("    tls: {certChainPemPath: c, privateKeyPemPath: k, passwd: x}\n"),
                        "streamfence.yaml:3:54: servers.s.tls.passwd: unknown key \"passwd\" (expected one of: "
                        "certChainPemPath, privateKeyPemPath, privateKeyPassword, protocol, watchIntervalMs)");
        expectOnlyError(withServer("    control: {prot: 1}\n"),
                        "streamfence.yaml:3:15: servers.s.control.prot: unknown key \"prot\" (did you mean \"port\"?)");
        expectOnlyError(withServer("    cors: {origin: ['*']}\n"),
                        "streamfence.yaml:3:12: servers.s.cors.origin: unknown key \"origin\" (did you mean \"origins\"?)");
        expectOnlyError("metrics: {sink: [x]}\n" + kMinimal,
                        "streamfence.yaml:1:11: metrics.sink: unknown key \"sink\" (did you mean \"sinks\"?)");
        // inboundAckPolicy is a namespace key (JS silently ignored it); a misspelling gets a hint.
        CPPUNIT_ASSERT(errorsOf(withNs("        inboundAckPolicy: ACK_AFTER_HANDLER_SUCCESS\n")).empty());
        expectOnlyError(withNs("        inboundAckPolcy: ACK_ON_RECEIPT\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].inboundAckPolcy: unknown key \"inboundAckPolcy\" "
                        "(did you mean \"inboundAckPolicy\"?)");
        expectOnlyError(withNs("        inboundAckPolicy: LATER\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].inboundAckPolicy: Invalid inboundAckPolicy \"LATER\" for "
                        "namespace /a (expected: ACK_ON_RECEIPT, ACK_AFTER_HANDLER_SUCCESS)");
    }

    void wrongTypes() {
        expectOnlyError(withServer("    port: abc\n"),
                        "streamfence.yaml:3:5: servers.s.port: expected an integer, got \"abc\"");
        expectOnlyError(withServer("    port: \"3000\"\n"),
                        "streamfence.yaml:3:5: servers.s.port: expected an integer, got \"3000\" (a quoted string; remove the quotes)");
        expectOnlyError(withServer("    port: 30.5\n"),
                        "streamfence.yaml:3:5: servers.s.port: expected an integer, got \"30.5\"");
        expectOnlyError(withServer("    port:\n"),
                        "streamfence.yaml:3:5: servers.s.port: expected an integer, got an empty value");
        expectOnlyError(withNs("        coalesce: yes\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].coalesce: expected a boolean (true or false), got \"yes\"");
        expectOnlyError(withNs("        allowPolling: \"true\"\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].allowPolling: expected a boolean (true or false), got \"true\"");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: prices\n",
                        "streamfence.yaml:5:9: servers.s.namespaces[0].topics: expected a list, got \"prices\"");
        expectOnlyError("servers:\n  s:\n    namespaces:\n      - path: /a\n        topics: [a, {b: 1}]\n",
                        "streamfence.yaml:5:21: servers.s.namespaces[0].topics[1]: expected a string, got a map");
        expectOnlyError(withServer("    host: [a, b]\n"), "streamfence.yaml:3:5: servers.s.host: expected a string, got a list");
        expectOnlyError("servers: [a]\n", "streamfence.yaml:1:1: servers: expected a map, got a list");
        expectOnlyError("servers:\n  s: 3\n", "streamfence.yaml:2:3: servers.s: expected a map, got \"3\"");
        expectOnlyError("servers:\n  s:\n    namespaces: {path: /a}\n",
                        "streamfence.yaml:3:5: servers.s.namespaces: expected a list, got a map");
        expectOnlyError("servers:\n  s:\n    namespaces: [x]\n",
                        "streamfence.yaml:3:18: servers.s.namespaces[0]: expected a map, got \"x\"");
        expectOnlyError("- a\n- b\n", "streamfence.yaml:1:1: expected a map, got a list");
        expectOnlyError(withServer("    transport: [WS]\n"),
                        "streamfence.yaml:3:5: servers.s.transport: expected a string, got a list");
        expectOnlyError("plugins: {jwt: 5}\n" + kMinimal,
                        "streamfence.yaml:1:11: plugins.jwt: expected a map of plugin options, got \"5\"");
    }

    void integerRanges() {
        expectOnlyError(withServer("    port: 70000\n"), "streamfence.yaml:3:5: servers.s.port: out of range: 70000 (expected 0..65535)");
        expectOnlyError(withServer("    port: -1\n"), "streamfence.yaml:3:5: servers.s.port: out of range: -1 (expected 0..65535)");
        expectOnlyError(withServer("    ioThreads: 257\n"), "streamfence.yaml:3:5: servers.s.ioThreads: out of range: 257 (expected 0..256)");
        expectOnlyError(withServer("    control: {port: 65536}\n"),
                        "streamfence.yaml:3:15: servers.s.control.port: out of range: 65536 (expected 0..65535)");
        expectOnlyError(withNs("        ackTimeoutMs: 3000000000\n"),
                        "streamfence.yaml:6:9: servers.s.namespaces[0].ackTimeoutMs: out of range: 3000000000 (expected -2147483648..2147483647)");
        expectOnlyError(withServer("    maxPayloadBytes: 99999999999999999999\n"),
                        "streamfence.yaml:3:5: servers.s.maxPayloadBytes: out of range: 99999999999999999999 "
                        "(expected -9223372036854775808..9223372036854775807)");
        Config c = yaml(withServer("    port: 65535\n    ioThreads: 256\n"));
        CPPUNIT_ASSERT_EQUAL(65535, c.servers[0].port);
        CPPUNIT_ASSERT_EQUAL(256, c.servers[0].ioThreads);
    }

    void collectsAllErrors() {
        const std::string text =
            "servers:\n"
            "  s:\n"
            "    port: x\n"
            "    transport: UDP\n"
            "    namespaces:\n"
            "      - path: feed\n"
            "        topics: []\n";
        try {
            yaml(text);
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            const std::vector<std::string> expected = {
                "streamfence.yaml:3:5: servers.s.port: expected an integer, got \"x\"",
                "streamfence.yaml:4:5: servers.s.transport: Invalid transport \"UDP\" (expected: WS, WSS)",
                "streamfence.yaml:6:9: servers.s.namespaces[0].path: namespace path must start with '/'",
                "streamfence.yaml:7:9: servers.s.namespaces[0].topics: namespace must define at least one topic",
            };
            CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(e.messages()), expected.size(), e.messages().size());
            for (size_t i = 0; i < expected.size(); ++i) CPPUNIT_ASSERT_EQUAL(expected[i], e.messages()[i]);
            std::string joined = expected[0] + "\n" + expected[1] + "\n" + expected[2] + "\n" + expected[3];
            CPPUNIT_ASSERT_EQUAL(joined, std::string(e.what()));
            // ConfigError is a runtime_error for callers that do not care about the list.
            const std::runtime_error& base = e;
            CPPUNIT_ASSERT_EQUAL(joined, std::string(base.what()));
        }
    }

    void duplicateKeys() {
        expectOnlyError(withServer("    port: 1\n    port: 2\n"),
                        "streamfence.yaml:4:5: servers.s.port: duplicate key \"port\" (first given at line 3)");
        expectOnlyError("servers:\n  s: {namespaces: [{path: /a, topics: [t]}]}\n  s: {namespaces: [{path: /b, topics: [t]}]}\n",
                        "streamfence.yaml:3:3: servers.s: duplicate key \"s\" (first given at line 2)");
        expectOnlyError("{\"servers\": {\"s\": {\"port\": 1, \"port\": 2, \"namespaces\": [{\"path\": \"/a\", \"topics\": [\"t\"]}]}}}",
                        "streamfence.yaml:1:31: servers.s.port: duplicate key \"port\" (first given at line 1)", Format::Json);
    }

    void parseErrorsCarryMarks() {
        auto errs = errorsOf("servers:\n  s:\n    namespaces: [\n");
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(1), errs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:1: Failed to parse config file: end of sequence flow not found"), errs[0]);
        errs = errorsOf("servers:\n  s: [a\n  b: c\n");
        CPPUNIT_ASSERT_EQUAL(size_t(1), errs.size());
        CPPUNIT_ASSERT(errs[0].find("streamfence.yaml:") == 0);
        CPPUNIT_ASSERT(errs[0].find("Failed to parse config file: ") != std::string::npos);
        expectOnlyError(kMinimal + "---\nservers: {}\n",
                        "streamfence.yaml:7:1: only one YAML document is allowed in a config file");
        // yaml-cpp's LoadAll alone never returns on these (found by tests/fuzz fuzz_config).
        expectOnlyError(",\nservers: {}\n",
                        "streamfence.yaml:1:1: Failed to parse config file: unexpected character (the parser cannot "
                        "continue here)");
        expectOnlyError("servers:\n  s: {}\n---\n, x\n",
                        "streamfence.yaml:4:1: Failed to parse config file: unexpected character (the parser cannot "
                        "continue here)");
    }

    void strictJson() {
        const std::string good = "{\"servers\": {\"s\": {\"namespaces\": [{\"path\": \"/a\", \"topics\": [\"t\"]}]}}}";
        expectNoErrors(good, Format::Json);
        expectOnlyError("{\n  # comment\n  \"servers\": {}\n}",
                        "streamfence.yaml:2:3: Failed to parse config file: invalid JSON: unexpected '#' (comments are "
                        "not allowed in JSON), expected a key in double quotes",
                        Format::Json);
        expectOnlyError("{servers: {}}", "streamfence.yaml:1:2: Failed to parse config file: invalid JSON: unexpected 's', "
                                         "expected a key in double quotes", Format::Json);
        expectOnlyError("{\"servers\": 'x'}", "streamfence.yaml:1:13: Failed to parse config file: invalid JSON: unexpected "
                                              "\"'\" (JSON strings use double quotes), expected a value", Format::Json);
        expectOnlyError("{\"a\": [1, 2,]}", "streamfence.yaml:1:13: Failed to parse config file: invalid JSON: unexpected "
                                           "']', expected a value", Format::Json);
        expectOnlyError("servers:\n  s: {}\n", "streamfence.yaml:1:1: Failed to parse config file: invalid JSON: unexpected "
                                              "'s', expected a value", Format::Json);
        expectOnlyError("{\"a\": 1} x", "streamfence.yaml:1:10: Failed to parse config file: invalid JSON: unexpected 'x' "
                                       "after the JSON document", Format::Json);
        expectOnlyError("", "streamfence.yaml:1:1: Failed to parse config file: invalid JSON: empty JSON document", Format::Json);
        // The same YAML-only syntax is fine in a YAML file.
        expectNoErrors("{servers: {s: {namespaces: [{path: /a, topics: ['t']}]}}} # ok\n");
        // Quoted numbers in JSON are strings, so they are type errors.
        expectOnlyError("{\"servers\": {\"s\": {\"port\": \"80\", \"namespaces\": [{\"path\": \"/a\", \"topics\": [\"t\"]}]}}}",
                        "streamfence.yaml:1:20: servers.s.port: expected an integer, got \"80\" (a quoted string; remove the quotes)",
                        Format::Json);
    }

    void loadFileErrors() {
        try {
            loadFile("/tmp/streamfence.txt");
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(std::string("Unsupported config file extension \".txt\" (expected .yaml, .yml, or .json): "
                                             "/tmp/streamfence.txt"),
                                 std::string(e.what()));
        }
        try {
            loadFile("/tmp/dir.d/streamfence");
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(std::string("Unsupported config file extension \"\" (expected .yaml, .yml, or .json): "
                                             "/tmp/dir.d/streamfence"),
                                 std::string(e.what()));
        }
        try {
            loadFile("/nonexistent/streamfence.yml");
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(std::string("Failed to read config file \"/nonexistent/streamfence.yml\": No such file or directory"),
                                 std::string(e.what()));
        }
        // A directory with a config-like name is a read error, not a crash or an empty config.
        char dirTemplate[] = "/tmp/sfcfgXXXXXX";
        std::string dir = mkdtemp(dirTemplate);
        std::string sub = dir + "/x.yaml";
        CPPUNIT_ASSERT_EQUAL(0, mkdir(sub.c_str(), 0700));
        try {
            loadFile(sub);
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL("Failed to read config file \"" + sub + "\": Is a directory", std::string(e.what()));
        }
        rmdir(sub.c_str());
        // Messages name the file as given; .JSON is strict JSON too.
        std::string path = dir + "/c.JSON";
        {
            std::ofstream out(path);
            out << "{\"servers\": {\"s\": {\"prot\": 1}}}";
        }
        try {
            loadFile(path);
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(size_t(2), e.messages().size());
            CPPUNIT_ASSERT_EQUAL(path + ":1:20: servers.s.prot: unknown key \"prot\" (did you mean \"port\"?)", e.messages()[0]);
            CPPUNIT_ASSERT_EQUAL(path + ":1:14: servers.s: missing required key \"namespaces\"", e.messages()[1]);
        }
        {
            std::ofstream out(path);
            out << "{\"servers\": {} # no\n}";
        }
        CPPUNIT_ASSERT_THROW(loadFile(path), ConfigError);
        std::remove(path.c_str());
        rmdir(dir.c_str());
    }

    void pluginOptionsFlattened() {
        const std::string text =
            "plugins:\n"
            "  static:\n"
            "    tokens:\n"
            "      alice: s3cret\n"
            "      bob: \"123\"\n"
            "    list: [a, 2, true]\n"
            "    nested: {deep: {x: 1.5}, nothing: ~}\n"
            "    text: \"say \\\"hi\\\"\\n\"\n"
            "  empty:\n" +
            kMinimal;
        Config c = yaml(text);
        CPPUNIT_ASSERT_EQUAL(size_t(2), c.pluginOptions.size());
        const PluginOptions& o = c.pluginOptions.at("static");
        const std::vector<std::pair<std::string, std::string>> flat = {
            {"tokens.alice", "s3cret"}, {"tokens.bob", "123"}, {"list.0", "a"}, {"list.1", "2"}, {"list.2", "true"},
            {"nested.deep.x", "1.5"}, {"nested.nothing", ""}, {"text", "say \"hi\"\n"}};
        CPPUNIT_ASSERT(o.flat == flat);
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"tokens":{"alice":"s3cret","bob":"123"},"list":["a",2,true],)"
                                         R"("nested":{"deep":{"x":1.5},"nothing":null},"text":"say \"hi\"\n"})"),
                             o.json);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:2:3: plugins.static"), o.mark.str());
        CPPUNIT_ASSERT_EQUAL(flat.size(), o.flatMarks.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:7: plugins.static.tokens.alice"), o.flatMarks[0].str());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:6:12: plugins.static.list[0]"), o.flatMarks[2].str());
        const PluginOptions& e = c.pluginOptions.at("empty");
        CPPUNIT_ASSERT(e.flat.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("{}"), e.json);
        expectOnlyError("plugins:\n  jwt: {a: 1, a: 2}\n" + kMinimal,
                        "streamfence.yaml:2:15: plugins.jwt.a: duplicate key \"a\" (first given at line 2)");
        expectOnlyError("plugins:\n  \"a b\": {}\n" + kMinimal,
                        "streamfence.yaml:2:3: plugins.a b: invalid plugin name \"a b\" (expected letters, digits, '_' or '-')");
    }

    void metricsSinks() {
        Config c = yaml("metrics:\n  sinks: [prometheus, statsd]\n" + kMinimal);
        CPPUNIT_ASSERT(c.metricsSinks == (std::vector<std::string>{"prometheus", "statsd"}));
        CPPUNIT_ASSERT_EQUAL(size_t(2), c.metricsSinkMarks.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:2:23: metrics.sinks[1]"), c.metricsSinkMarks[1].str());
        c = yaml("metrics: {sinks: []}\n" + kMinimal);
        CPPUNIT_ASSERT(c.metricsSinks.empty());
        c = yaml(kMinimal);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:1:1: metrics.sinks[0]"), c.metricsSinkMarks.at(0).str());
        expectOnlyError("metrics: {sinks: [a, a]}\n" + kMinimal,
                        "streamfence.yaml:1:22: metrics.sinks[1]: duplicate metrics sink \"a\"");
        expectOnlyError("metrics: {sinks: prometheus}\n" + kMinimal,
                        "streamfence.yaml:1:11: metrics.sinks: expected a list, got \"prometheus\"");
    }

    void garbageNeverCrashes() {
        // Every prefix of the shipped configs either loads or throws ConfigError; nothing else.
        for (const char* name : {"/conf/streamfence.yaml", "/conf/streamfence.json"}) {
            const std::string full = readFile(kSrc + name);
            const Format f = std::string(name).find(".json") != std::string::npos ? Format::Json : Format::Yaml;
            CPPUNIT_ASSERT(!full.empty());
            for (size_t n = 0; n <= full.size(); n += 7) {
                try {
                    loadString(full.substr(0, n), "x", f);
                } catch (const ConfigError&) {
                }
            }
        }
        const std::vector<std::string> nasty = {
            std::string(5000, '['), std::string(5000, '{'), "\x01\x02\xff", "servers: !!binary AAAA", "servers: &a [*a]",
            "? [a]\n: b\n", "servers:\n  ? [x]\n  : {}\n", "servers: {s: {namespaces: [~, ~]}}", "\t\tservers:",
            "servers: {s: {namespaces: [{path: /a, topics: [~]}]}}", std::string("a: \0b", 5)};
        for (const auto& text : nasty) {
            for (Format f : {Format::Yaml, Format::Json}) {
                try {
                    loadString(text, "x", f);
                } catch (const ConfigError& e) {
                    CPPUNIT_ASSERT(!e.messages().empty());
                }
            }
        }
        std::string deepJson = std::string(300, '[') + std::string(300, ']');
        CPPUNIT_ASSERT_THROW(loadString(deepJson, "x", Format::Json), ConfigError);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConfigLoaderTest);

// The `cluster` block (config/cluster_schema.cpp, config/redis_url.cpp): defaults, every
// key, and file:line errors like the rest of the schema.
#include <cppunit/extensions/HelperMacros.h>

#include "config/redis_url.hpp"
#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

namespace {
// kMinimal is 5 lines; the cluster block starts on line 6.
std::string withCluster(const std::string& block) { return kMinimal + block; }
}  // namespace

class ClusterConfigTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ClusterConfigTest);
    CPPUNIT_TEST(absentMeansAlone);
    CPPUNIT_TEST(defaultsAndEveryKey);
    CPPUNIT_TEST(errorsWithPositions);
    CPPUNIT_TEST(urlParser);
    CPPUNIT_TEST(urlParserRejects);
    CPPUNIT_TEST_SUITE_END();

public:
    void absentMeansAlone() { CPPUNIT_ASSERT(!yaml(kMinimal).cluster); }

    void defaultsAndEveryKey() {
        Config c = yaml(withCluster("cluster:\n  redis: {url: redis://10.0.0.5}\n"));
        CPPUNIT_ASSERT(c.cluster);
        CPPUNIT_ASSERT_EQUAL(std::string("10.0.0.5"), c.cluster->redis.host);
        CPPUNIT_ASSERT_EQUAL(6379, c.cluster->redis.port);
        CPPUNIT_ASSERT_EQUAL(std::string("sf"), c.cluster->keyPrefix);
        CPPUNIT_ASSERT_EQUAL(std::string("socket.io"), c.cluster->socketioEmitterKey);
        CPPUNIT_ASSERT(c.cluster->nodeId.empty());
        CPPUNIT_ASSERT_EQUAL(10000, c.cluster->streamMaxLen);
        CPPUNIT_ASSERT_EQUAL(0, c.cluster->streamMaxAgeMs);

        c = yaml(withCluster("cluster:\n"
                             "  redis: {url: 'redis://:p%40ss@cache.local:6380/2', keyPrefix: app1, connectTimeoutMs: 500, commandTimeoutMs: 700}\n"
                             "  nodeId: node-a\n"
                             "  socketioEmitterKey: null\n"
                             "  streams: {maxLen: 500, maxAgeMs: 60000}\n"
                             "  heartbeatMs: 200\n"
                             "  nodeTtlMs: 900\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("cache.local"), c.cluster->redis.host);
        CPPUNIT_ASSERT_EQUAL(6380, c.cluster->redis.port);
        CPPUNIT_ASSERT_EQUAL(2, c.cluster->redis.db);
        CPPUNIT_ASSERT_EQUAL(std::string("p@ss"), c.cluster->redis.password);
        CPPUNIT_ASSERT_EQUAL(std::string("app1"), c.cluster->keyPrefix);
        CPPUNIT_ASSERT_EQUAL(500, c.cluster->connectTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(700, c.cluster->commandTimeoutMs);
        CPPUNIT_ASSERT_EQUAL(std::string("node-a"), c.cluster->nodeId);
        CPPUNIT_ASSERT(c.cluster->socketioEmitterKey.empty());  // null turns the bridge off
        CPPUNIT_ASSERT_EQUAL(500, c.cluster->streamMaxLen);
        CPPUNIT_ASSERT_EQUAL(60000, c.cluster->streamMaxAgeMs);
        CPPUNIT_ASSERT_EQUAL(200, c.cluster->heartbeatMs);
        CPPUNIT_ASSERT_EQUAL(900, c.cluster->nodeTtlMs);
    }

    void errorsWithPositions() {
        expectOnlyError(withCluster("cluster:\n  nodeId: a\n"), "streamfence.yaml:6:1: cluster: missing required key \"redis\"");
        expectOnlyError(withCluster("cluster:\n  redis: {keyPrefix: x}\n"),
                        "streamfence.yaml:7:3: cluster.redis: missing required key \"url\"");
        expectOnlyError(withCluster("cluster:\n  redis:\n    url: http://x\n"),
                        "streamfence.yaml:8:5: cluster.redis.url: invalid Redis URL \"http://x\": expected redis://[:password@]host[:port][/db]");
        expectOnlyError(withCluster("cluster:\n  redis:\n    url: redis://h:99999\n"),
                        "streamfence.yaml:8:5: cluster.redis.url: invalid Redis URL \"redis://h:99999\": port must be 1..65535, got \"99999\"");
        expectOnlyError(withCluster("cluster:\n  redis: {url: redis://h}\n  nodeId: 'a b'\n"),
                        "streamfence.yaml:8:3: cluster.nodeId: must be 1-128 characters of A-Z a-z 0-9 _ - . (got \"a b\")");
        expectOnlyError(withCluster("cluster:\n  redis: {url: redis://h}\n  streams: {maxLen: 0}\n"),
                        "streamfence.yaml:8:13: cluster.streams.maxLen: must be between 1 and 1000000000, got 0");
        expectOnlyError(withCluster("cluster:\n  redis: {url: redis://h}\n  nodeTtl: 5\n"),
                        "streamfence.yaml:8:3: cluster.nodeTtl: unknown key \"nodeTtl\" (did you mean \"nodeTtlMs\"?)");
        expectOnlyError(withCluster("cluster:\n  redis: {url: redis://h}\n  socketioEmitterKey: 'a#b'\n"),
                        "streamfence.yaml:8:3: cluster.socketioEmitterKey: must not contain # * ? [ ] \\ (got \"a#b\")");
        expectOnlyError(withCluster("cluster:\n  redis: {url: redis://h}\n  heartbeatMs: 1000\n  nodeTtlMs: 1000\n"),
                        "streamfence.yaml:9:3: cluster.nodeTtlMs: must be greater than heartbeatMs (1000)");
        expectOnlyError(withCluster("cluster: 3\n"), "streamfence.yaml:6:1: cluster: expected a map, got \"3\"");
    }

    void urlParser() {
        RedisUrl u;
        std::string err;
        CPPUNIT_ASSERT(parseRedisUrl("redis://127.0.0.1:6390/0", u, err));
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), u.host);
        CPPUNIT_ASSERT_EQUAL(6390, u.port);
        CPPUNIT_ASSERT_EQUAL(0, u.db);
        CPPUNIT_ASSERT(u.password.empty() && u.user.empty());
        CPPUNIT_ASSERT(parseRedisUrl("redis://alice:s3cr%3At@[::1]:7000/15", u, err));
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), u.host);
        CPPUNIT_ASSERT_EQUAL(7000, u.port);
        CPPUNIT_ASSERT_EQUAL(15, u.db);
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), u.user);
        CPPUNIT_ASSERT_EQUAL(std::string("s3cr:t"), u.password);
        CPPUNIT_ASSERT(parseRedisUrl("redis://:pw@redis", u, err));
        CPPUNIT_ASSERT_EQUAL(std::string("redis"), u.host);
        CPPUNIT_ASSERT_EQUAL(6379, u.port);
        CPPUNIT_ASSERT(u.user.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("pw"), u.password);
    }

    void urlParserRejects() {
        const char* bad[] = {"",
                             "redis://",
                             "redis://:6379",
                             "rediss://h",
                             "redis://h:",
                             "redis://h:abc",
                             "redis://h:0",
                             "redis://h/x",
                             "redis://[::1",
                             "redis://[::1]x",
                             "redis://:@h",
                             "redis://u:%zz@h",
                             "redis://h h"};
        for (const char* b : bad) {
            RedisUrl u;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(b, !parseRedisUrl(b, u, err));
            CPPUNIT_ASSERT_MESSAGE(b, !err.empty());
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ClusterConfigTest);

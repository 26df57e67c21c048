// checkPluginRefs: every plugin a config names, checked against what is installed.
#include <cppunit/extensions/HelperMacros.h>

#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

class PluginRefsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PluginRefsTest);
    CPPUNIT_TEST(pluginRefs);
    CPPUNIT_TEST_SUITE_END();

public:
    void pluginRefs() {
        const std::string text =
            "metrics: {sinks: [prometheus, statsd]}\n"                  // 1
            "servers:\n"                                                // 2
            "  feed:\n"                                                 // 3
            "    auth: TOKEN\n"                                         // 4
            "    tokenValidator: x\n"                                   // 5
            "    namespaces:\n"                                         // 6
            "      - path: /a\n"                                        // 7
            "        topics: [t]\n"                                     // 8
            "      - path: /b\n"                                        // 9
            "        topics: [t]\n"                                     // 10
            "        overflowAction: DROP_NEWEST\n"                     // 11
            "      - path: /c\n"                                        // 12
            "        topics: [t]\n"                                     // 13
            "        overflowAction: SPILL_TO_DISK\n"                   // 14
            "        spillBackend: hpkv\n"                              // 15
            "      - path: /d\n"                                        // 16
            "        topics: [t]\n"                                     // 17
            "        overflowAction: REJECT_NEW\n"                      // 18
            "        spillBackend: nowhere\n";                          // 19 (not SPILL_TO_DISK: not checked)
        Config c = yaml(text);
        std::set<std::string> installed = {"overflow-policy/REJECT_NEW", "overflow-policy/DROP_OLDEST",
                                           "overflow-policy/SPILL_TO_DISK", "metrics-sink/prometheus",
                                           "token-validator/static", "token-validator/jwt", "storage-backend/disk"};
        auto isInstalled = [&](const std::string& kind, const std::string& name) {
            return installed.count(kind + "/" + name) != 0;
        };
        auto list = [&](const std::string& kind) {
            std::vector<std::string> out;
            for (const auto& k : installed)
                if (k.rfind(kind + "/", 0) == 0) out.push_back(k.substr(kind.size() + 1));
            return out;
        };
        auto errs = checkPluginRefs(c, isInstalled, list);
        const std::vector<std::string> expected = {
            "streamfence.yaml:1:31: metrics.sinks[1]: no metrics-sink plugin named \"statsd\" is installed (installed: prometheus)",
            "streamfence.yaml:5:5: servers.feed.tokenValidator: no token-validator plugin named \"x\" is installed (installed: jwt, static)",
            "streamfence.yaml:11:9: servers.feed.namespaces[1].overflowAction: invalid value \"DROP_NEWEST\" (expected one of "
            "DROP_OLDEST, REJECT_NEW, COALESCE, SNAPSHOT_ONLY, SPILL_TO_DISK or an installed overflow-policy plugin)",
            "streamfence.yaml:15:9: servers.feed.namespaces[2].spillBackend: no storage-backend plugin named \"hpkv\" is "
            "installed (installed: disk)",
        };
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), expected.size(), errs.size());
        for (size_t i = 0; i < expected.size(); ++i) CPPUNIT_ASSERT_EQUAL(expected[i], errs[i]);

        // Without a lister the messages carry no installed list.
        errs = checkPluginRefs(c, isInstalled);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:5:5: servers.feed.tokenValidator: no token-validator plugin "
                                         "named \"x\" is installed"),
                             errs.at(1));

        // Once everything is installed, nothing is reported; user policy plugins resolve too.
        installed.insert({"metrics-sink/statsd", "token-validator/x", "overflow-policy/DROP_NEWEST", "storage-backend/hpkv"});
        CPPUNIT_ASSERT(checkPluginRefs(c, isInstalled, list).empty());

        // A built-in policy whose plugin is missing, a default (unwritten) overflowAction and a hint.
        Config d = yaml(withNs("") + "      - path: /b\n        topics: [t]\n        overflowAction: drop_oldest\n");
        std::set<std::string> few = {"overflow-policy/DROP_OLDEST", "metrics-sink/prometheus"};
        auto fewInstalled = [&](const std::string& kind, const std::string& name) { return few.count(kind + "/" + name) != 0; };
        auto fewList = [&](const std::string& kind) {
            std::vector<std::string> out;
            for (const auto& k : few)
                if (k.rfind(kind + "/", 0) == 0) out.push_back(k.substr(kind.size() + 1));
            return out;
        };
        errs = checkPluginRefs(d, fewInstalled, fewList);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(2), errs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:4:9: servers.s.namespaces[0].overflowAction: no overflow-policy "
                                         "plugin named \"REJECT_NEW\" is installed (installed: DROP_OLDEST)"),
                             errs[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:8:9: servers.s.namespaces[1].overflowAction: invalid value "
                                         "\"drop_oldest\" (expected one of DROP_OLDEST, REJECT_NEW, COALESCE, SNAPSHOT_ONLY, "
                                         "SPILL_TO_DISK or an installed overflow-policy plugin) (did you mean \"DROP_OLDEST\"?)"),
                             errs[1]);
        // The default metrics sink is checked even though the file does not name it.
        few.erase("metrics-sink/prometheus");
        errs = checkPluginRefs(yaml(kMinimal), [](const std::string& k, const std::string&) { return k != kMetricsSink; });
        CPPUNIT_ASSERT_EQUAL_MESSAGE(dump(errs), size_t(1), errs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("streamfence.yaml:1:1: metrics.sinks[0]: no metrics-sink plugin named "
                                         "\"prometheus\" is installed"),
                             errs[0]);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PluginRefsTest);

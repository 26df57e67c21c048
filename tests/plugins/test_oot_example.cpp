// Loads the validator built out of tree against the installed SDK (plugins.sdk_out_of_tree_build
// produced it; SF_OOT_PLUGIN names it) and validates tokens through the registry.
#include <cppunit/extensions/HelperMacros.h>

#include <cstdlib>
#include <cstring>

#include "plugins/registry.hpp"
#include "plugins/text_writer.hpp"

using namespace sf::plugins;

class OotExampleTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(OotExampleTest);
    CPPUNIT_TEST(testLoadsAndValidates);
    CPPUNIT_TEST_SUITE_END();

    struct Answer {
        int32_t accepted;
        std::string principal, reason;
    };
    static Answer check(const PluginInstance& inst, const std::string& token) {
        const auto* vt = inst.vtable<sf_token_validator_vtable>();
        sf_token_request rq{};
        rq.struct_size = sizeof rq;
        rq.token = {token.data(), token.size()};
        rq.action = {"connect", 7};
        TextWriter principal, reason;
        sf_token_result r{};
        r.struct_size = sizeof r;
        r.principal = principal.raw();
        r.reason = reason.raw();
        CPPUNIT_ASSERT_EQUAL(SF_OK, vt->validate(inst.handle(), &rq, &r));
        return Answer{r.accepted, principal.take(), reason.take()};
    }

public:
    void testLoadsAndValidates() {
        const char* path = std::getenv("SF_OOT_PLUGIN");
        CPPUNIT_ASSERT_MESSAGE("SF_OOT_PLUGIN not set (run through ctest)", path && *path);
        Registry reg;
        CPPUNIT_ASSERT_MESSAGE(reg.refusals().empty() ? "" : reg.refusals()[0].reason, reg.loadFile(path));
        CPPUNIT_ASSERT(reg.has(SF_KIND_TOKEN_VALIDATOR, "example"));
        sf::config::PluginOptions opts;
        opts.flat = {{"allow.0", "alice:s3cret"}, {"allow.1", "bob:hunter2"}};
        auto inst = reg.instantiate(SF_KIND_TOKEN_VALIDATOR, "example", opts);
        Answer r = check(*inst, "alice:s3cret");
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(r.accepted));
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), std::string(r.principal));
        r = check(*inst, "alice:wrong");
        CPPUNIT_ASSERT_EQUAL(0, static_cast<int>(r.accepted));
        CPPUNIT_ASSERT_EQUAL(std::string("Invalid token"), std::string(r.reason));
        r = check(*inst, "");
        CPPUNIT_ASSERT_EQUAL(std::string("Missing token"), std::string(r.reason));
        // Without options its init fails, and the registry says so.
        CPPUNIT_ASSERT_THROW(reg.instantiate(SF_KIND_TOKEN_VALIDATOR, "example", {}), PluginError);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(OotExampleTest);

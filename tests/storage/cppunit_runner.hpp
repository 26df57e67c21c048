// main() of the storage-backend tests: every registered CppUnit suite, or the one test or suite
// named on the command line (a name that matches nothing is an error, never a silent pass).
#pragma once
#include <cppunit/extensions/TestFactoryRegistry.h>
#include <cppunit/ui/text/TestRunner.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace sfstorage {

inline int runCppUnit(const std::string& only = "") {
    CppUnit::TextUi::TestRunner runner;
    runner.addTest(CppUnit::TestFactoryRegistry::getRegistry().makeTest());
    try {
        return runner.run(only) ? 0 : 1;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "no test named \"%s\": %s\n", only.c_str(), e.what());
        return 1;
    }
}

}  // namespace sfstorage

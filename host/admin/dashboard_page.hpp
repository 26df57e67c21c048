// The dashboard page (host/admin/dashboard.html), compiled into the binary by CMake
// (dashboard_page.cpp.in): one self-contained file, nothing to install, nothing fetched.
#pragma once
#include <string>

namespace sf::admin {

const std::string& dashboardPage();

}  // namespace sf::admin

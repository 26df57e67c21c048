#include "config/hints.hpp"
#include "config/loader.hpp"

#include <algorithm>

namespace sf::config {
namespace {

class RefChecker {
public:
    RefChecker(const std::function<bool(const std::string&, const std::string&)>& isInstalled,
               const std::function<std::vector<std::string>(const std::string&)>& listInstalled)
        : isInstalled_(isInstalled), listInstalled_(listInstalled) {}

    // `no <kind> plugin named "x" is installed (installed: a, b)`
    void require(const SourceMark& mark, const std::string& kind, const std::string& name) {
        if (isInstalled_(kind, name)) return;
        std::string msg = "no " + kind + " plugin named \"" + name + "\" is installed";
        if (listInstalled_) {
            std::vector<std::string> names = listInstalled_(kind);
            msg += " (installed: " + (names.empty() ? std::string("none") : joinNames(names)) + ")";
            msg += didYouMean(name, names);
        }
        add(mark, msg);
    }

    void overflowAction(const NamespaceConfig& ns) {
        const std::string& name = ns.overflowAction;
        if (isInstalled_(kOverflowPolicy, name)) return;
        const auto& builtins = builtinOverflowActions();
        if (std::find(builtins.begin(), builtins.end(), name) != builtins.end()) {
            // A built-in name that is not there means the bundled plugin is missing.
            require(ns.overflowActionMark, kOverflowPolicy, name);
            return;
        }
        std::vector<std::string> candidates = builtins;
        if (listInstalled_)
            for (const auto& n : listInstalled_(kOverflowPolicy))
                if (std::find(candidates.begin(), candidates.end(), n) == candidates.end()) candidates.push_back(n);
        add(ns.overflowActionMark, "invalid value \"" + name + "\" (expected one of " + joinNames(builtins) +
                                       " or an installed overflow-policy plugin)" + didYouMean(name, candidates));
    }

    std::vector<std::string> take() { return std::move(errors_); }

private:
    void add(const SourceMark& mark, const std::string& msg) {
        std::string prefix = mark.str();
        errors_.push_back(prefix.empty() ? msg : prefix + ": " + msg);
    }

    const std::function<bool(const std::string&, const std::string&)>& isInstalled_;
    const std::function<std::vector<std::string>(const std::string&)>& listInstalled_;
    std::vector<std::string> errors_;
};

}  // namespace

std::vector<std::string> checkPluginRefs(
    const Config& config,
    const std::function<bool(const std::string& kind, const std::string& name)>& isInstalled,
    const std::function<std::vector<std::string>(const std::string& kind)>& listInstalled) {
    RefChecker c(isInstalled, listInstalled);
    for (size_t i = 0; i < config.metricsSinks.size(); ++i) {
        SourceMark mark = i < config.metricsSinkMarks.size() ? config.metricsSinkMarks[i] : SourceMark{};
        if (mark.keyPath.empty()) mark.keyPath = "metrics.sinks[" + std::to_string(i) + "]";
        c.require(mark, kMetricsSink, config.metricsSinks[i]);
    }
    for (const auto& s : config.servers) {
        if (!s.tokenValidator.empty()) c.require(s.tokenValidatorMark, kTokenValidator, s.tokenValidator);
        for (const auto& ns : s.namespaces) {
            c.overflowAction(ns);
            if (ns.overflowAction == "SPILL_TO_DISK") c.require(ns.spillBackendMark, kStorageBackend, ns.spillBackend);
        }
    }
    return c.take();
}

}  // namespace sf::config

#include "config/yaml_documents.hpp"

#include <yaml-cpp/eventhandler.h>

#include <sstream>

namespace sf::config {
namespace {

// Notes where each document starts; nothing else. A parser that makes progress starts every
// document further into the text than the one before.
struct DocumentStarts : YAML::EventHandler {
    std::vector<YAML::Mark> starts;
    void OnDocumentStart(const YAML::Mark& m) override { starts.push_back(m); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

}  // namespace

std::vector<YAML::Node> loadYamlDocuments(const std::string& text) {
    // A first pass over the events proves the parser gets to the end; only then LoadAll,
    // whose parser sees the same text and so takes the same (finite) path.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts d;
    while (parser.HandleNextDocument(d)) {
        size_t n = d.starts.size();
        if (n >= 2 && d.starts[n - 1].pos <= d.starts[n - 2].pos)
            throw YAML::ParserException(d.starts[n - 1], "unexpected character (the parser cannot continue here)");
    }
    return YAML::LoadAll(text);
}

}  // namespace sf::config

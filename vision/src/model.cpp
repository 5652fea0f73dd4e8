#include "model.h"

#include <cctype>

namespace mcv::vision {

ArgReader::ArgReader(const Json& args, std::string family) : args_(args), family_(std::move(family)) {
  if (!args_.is_object()) throw Error(family_ + " config", "constructor arguments must be a JSON object");
}

void ArgReader::fail(const std::string& name, const std::string& problem) const {
  throw Error("argument " + name, problem);
}

void ArgReader::finish() const {
  for (const auto& [name, value] : args_.items())
    if (!used_.count(name))
      throw Error("argument " + name, "not supported by the " + family_ + " port (value " + value.dump() + ")");
}

namespace {
const std::map<std::string, Family>& families() {
  static const std::map<std::string, Family> registry = [] {
    std::map<std::string, Family> r;
    for (Family& f : builtin_families()) r[f.name] = std::move(f);
    return r;
  }();
  return registry;
}
}  // namespace

const Family& find_family(const std::string& name) {
  auto it = families().find(name);
  if (it == families().end()) {
    std::string known;
    for (const auto& [n, f] : families()) known += (known.empty() ? "" : ", ") + n;
    throw Error("family " + name, "unknown model family (known: " + known + ")");
  }
  return it->second;
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

const ModelSpec& find_spec(const std::string& name) {
  const std::string key = lower(name);
  for (const auto& [n, family] : families())
    for (const ModelSpec& spec : family.variants) {
      if (lower(spec.info.name) == key) return spec;
      for (const auto& alias : spec.info.aliases)
        if (lower(alias) == key) return spec;
    }
  throw Error("model " + name, "not a registered model (see `mcv models`)");
}

std::vector<std::string> family_names() {
  std::vector<std::string> names;
  for (const auto& [n, f] : families()) names.push_back(n);
  return names;
}

}  // namespace mcv::vision

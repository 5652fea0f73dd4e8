#include "eval_dataset.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

#include "mcv/error.h"

namespace mcv::cli {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tga";
}

namespace {

std::vector<fs::path> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const bool is_dir = it->is_directory(ec);
    if (want_dirs ? is_dir : (!is_dir && is_image_file(it->path()))) out.push_back(it->path());
  }
  if (ec) throw Error(dir.string(), "cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

EvalDataset read_eval_dataset(const fs::path& dir, const fs::path& labels_file, int num_classes,
                              const std::vector<std::string>& class_labels) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string(), "not a folder");
  EvalDataset data;
  if (labels_file.empty()) {
    const auto classes = sorted_entries(dir, true);
    if (classes.empty())
      throw Error(dir.string(), "no class folders (expected an ImageFolder tree: one folder per class; or pass --labels)");
    if (static_cast<int>(classes.size()) != num_classes)
      throw Error(dir.string(), std::to_string(classes.size()) + " class folders, but the model has " +
                                    std::to_string(num_classes) + " classes");
    for (std::size_t c = 0; c < classes.size(); ++c) {
      data.class_names.push_back(classes[c].filename().string());
      const auto images = sorted_entries(classes[c], false);
      if (images.empty()) throw Error(classes[c].string(), "class folder has no images");
      for (const auto& p : images) data.samples.push_back({p, static_cast<int>(c)});
    }
    return data;
  }
  std::ifstream in(labels_file);
  if (!in) throw Error(labels_file.string(), "cannot open labels file");
  std::map<std::string, int> by_name;
  for (std::size_t i = 0; i < class_labels.size(); ++i) by_name[class_labels[i]] = static_cast<int>(i);
  data.class_names = class_labels;
  if (data.class_names.empty())
    for (int i = 0; i < num_classes; ++i) data.class_names.push_back(std::to_string(i));
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto split = line.find_last_of(" \t,");
    const std::string where = labels_file.string() + ":" + std::to_string(line_no);
    if (split == std::string::npos) throw Error(where, "expected `path label`");
    std::string file = line.substr(0, split), label = line.substr(split + 1);
    while (!file.empty() && (file.back() == ' ' || file.back() == '\t' || file.back() == ',')) file.pop_back();
    int index = -1;
    const auto [end, err] = std::from_chars(label.data(), label.data() + label.size(), index);
    if (err != std::errc() || end != label.data() + label.size()) {
      auto it = by_name.find(label);
      if (it == by_name.end()) throw Error(where, "unknown label \"" + label + "\"");
      index = it->second;
    }
    if (index < 0 || index >= num_classes)
      throw Error(where, "label " + std::to_string(index) + " out of range for " + std::to_string(num_classes) + " classes");
    const fs::path p = dir / file;
    if (!fs::exists(p, ec)) throw Error(where, "listed image " + p.string() + " does not exist");
    data.samples.push_back({p, index});
  }
  if (data.samples.empty()) throw Error(labels_file.string(), "lists no images");
  return data;
}

}  // namespace mcv::cli

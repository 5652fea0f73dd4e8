#pragma once
// Evaluation datasets: an ImageFolder tree (one sub-folder per class, sorted names = class
// indices, as torchvision's ImageFolder) or a flat folder with a labels file.

#include <filesystem>
#include <string>
#include <vector>

namespace mcv::cli {

struct EvalSample {
  std::filesystem::path path;
  int label = 0;
};

struct EvalDataset {
  std::vector<EvalSample> samples;
  std::vector<std::string> class_names;  ///< folder names (ImageFolder) or label-file names
};

/// Reads `dir`. With `labels_file` empty, `dir` must be an ImageFolder; otherwise each line of the
/// labels file is `relative/path label` (label: an index, or a class name of `class_labels`).
/// Errors: missing/empty folder, no images, class folders without images, unknown labels, label
/// out of range, listed files that do not exist.
EvalDataset read_eval_dataset(const std::filesystem::path& dir, const std::filesystem::path& labels_file,
                              int num_classes, const std::vector<std::string>& class_labels);

/// True for the file extensions the image loader reads.
bool is_image_file(const std::filesystem::path& path);

}  // namespace mcv::cli

#include "module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "mcv/error.h"

namespace mcv::vision {

Param& Module::param(const std::string& local_name, Shape shape, ParamKind kind) {
  auto p = std::make_unique<Param>();
  p->shape = std::move(shape);
  p->kind = kind;
  Param& ref = *p;
  params_.emplace_back(local_name, std::move(p));
  return ref;
}

void Module::visit_params(const std::function<void(const std::string&, Param&)>& fn, const std::string& prefix) {
  for (auto& [name, p] : params_) fn(prefix + name, *p);
  for (auto& [name, c] : children_) c->visit_params(fn, prefix + name + ".");
}

void Module::finalize(Context& ctx) {
  for (auto& [name, c] : children_) c->finalize(ctx);
  on_loaded(ctx);
}

namespace {

std::string join_limited(const std::vector<std::string>& items, std::size_t limit = 12) {
  std::ostringstream out;
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) out << (i ? ", " : "") << items[i];
  if (items.size() > limit) out << ", ... (" << items.size() - limit << " more)";
  return out.str();
}

}  // namespace

void load_state_dict(Module& root, const Checkpoint& checkpoint, Context& ctx, const LoadOptions& options) {
  load_state_dict(root, checkpoint.tensors(), checkpoint.path().string(), ctx, options);
}

void load_state_dict(Module& root, const std::map<std::string, Tensor>& tensors, const std::string& source,
                     Context& ctx, const LoadOptions& options) {
  std::map<std::string, const Tensor*> available;
  for (const auto& [name, t] : tensors) {
    if (!options.key_prefix.empty()) {
      if (name.rfind(options.key_prefix, 0) != 0) {
        available[name] = &t;  // reported as unexpected below
        continue;
      }
      available[name.substr(options.key_prefix.size())] = &t;
    } else {
      available[name] = &t;
    }
  }
  if (options.rename) {
    std::map<std::string, const Tensor*> renamed;
    for (const auto& [name, t] : available)
      if (!renamed.emplace(options.rename(name), t).second)
        throw Error(source, "two tensors map to the name " + options.rename(name));
    available = std::move(renamed);
  }
  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  root.visit_params([&](const std::string& name, Param& p) {
    p.name = name;
    auto it = available.find(name);
    if (it == available.end()) {
      if (!p.optional && p.kind != ParamKind::ignored) missing.push_back(name);
      return;
    }
    used.insert(name);
    const Tensor& src = *it->second;
    if (p.kind == ParamKind::ignored) return;
    if (src.shape() != p.shape &&
        std::find(p.alt_shapes.begin(), p.alt_shapes.end(), src.shape()) == p.alt_shapes.end()) {
      mismatched.push_back(name + " (checkpoint " + shape_str(src.shape()) + ", model " + shape_str(p.shape) + ")");
      return;
    }
    MCV_CHECK(is_floating(src.dtype()), source, ": tensor ", name, " has dtype ",
              dtype_name(src.dtype()), ", expected a floating-point parameter");
  });
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : available)
    if (!used.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream msg;
    msg << "checkpoint does not match the model:";
    if (!missing.empty()) msg << " " << missing.size() << " missing [" << join_limited(missing) << "];";
    if (!unexpected.empty()) msg << " " << unexpected.size() << " unexpected [" << join_limited(unexpected) << "];";
    if (!mismatched.empty()) msg << " " << mismatched.size() << " mis-shaped [" << join_limited(mismatched) << "];";
    std::string text = msg.str();
    text.pop_back();
    throw Error(source, text);
  }
  // Convert once at load: weights to the compute dtype, the rest in f32, all on the device.
  ContextScope scope(ctx);
  root.visit_params([&](const std::string& name, Param& p) {
    auto it = available.find(name);
    if (it == available.end() || p.kind == ParamKind::ignored) return;
    const DType target = p.kind == ParamKind::weight ? options.dtype : DType::f32;
    const Tensor& src = *it->second;
    Tensor converted = src.dtype() == target ? src : src.to(target);
    p.value = converted.to(options.device);
    if (p.value.shape() != p.shape) p.value = p.value.view(p.shape);
  });
  root.finalize(ctx);
  ctx.synchronize();
}

std::int64_t count_parameters(Module& root) {
  std::int64_t n = 0;
  root.visit_params([&](const std::string&, Param& p) {
    if (p.kind != ParamKind::ignored) n += shape_numel(p.shape);
  });
  return n;
}

}  // namespace mcv::vision

// soma::save / soma::load on top of io::safetensors.
#include "soma/nn/serialize.h"

#include "soma/core/error.h"
#include "soma/io/safetensors.h"

namespace soma {

void save(const nn::Module& model, const std::string& path) {
  io::save_safetensors(path, model.state_dict(), {{"format", "pt"}});
}

void load(nn::Module& model, const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  const nn::StateDict own = model.state_dict();
  for (const auto& [name, t] : own)
    SOMA_CHECK(file.tensors.count(name), "load: missing tensor \"", name, "\" in ", path);
  for (const auto& [name, t] : file.tensors)
    SOMA_CHECK(own.count(name), "load: unexpected tensor \"", name, "\" in ", path,
               " (the model has no such parameter or buffer)");
  for (const auto& [name, t] : own) {
    const Tensor& src = file.tensors.at(name);
    SOMA_CHECK(src.shape() == t.shape(), "load: \"", name, "\" has shape ", src.shape(), " where ",
               t.shape(), " was expected in ", path);
    SOMA_CHECK(src.dtype() == t.dtype(), "load: \"", name, "\" has dtype ", src.dtype(), " where ",
               t.dtype(), " was expected in ", path);
  }
  // Everything is checked, so this cannot fail half-way.
  model.load_state_dict(file.tensors);
}

}  // namespace soma

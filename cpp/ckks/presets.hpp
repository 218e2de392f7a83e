// Named parameter presets. The name carries the shape; every preset except
// those whose name says "insecure" passes the 128-bit HE-standard check.
#pragma once
#include <string>
#include <vector>

#include "ckks/params.hpp"

namespace ht {

std::vector<std::string> preset_names();
ParamsLiteral preset_literal(const std::string& name);  // throws InvalidArgument for unknown names

}  // namespace ht

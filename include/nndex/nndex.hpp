// Umbrella header for the nndex C++ API.
#pragma once

#include "nndex/errors.hpp"
#include "nndex/gpu.hpp"
#include "nndex/index.hpp"
#include "nndex/types.hpp"
#include "nndex/version.hpp"

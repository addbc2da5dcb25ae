// The single source of the version: CMake and the Python package both read it from here.
#pragma once

#define NNDEX_VERSION_STRING "0.3.0"

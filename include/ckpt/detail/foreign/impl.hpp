#pragma once
// Definitions of ckpt/foreign.hpp, by concern: the name map and opening a foreign file
// (foreign_file.hpp), the restore from one (restore.hpp), the safetensors writer (write.hpp) and
// import_file (import.hpp); bridge.hpp reaches a checkpoint's walks for the last three.

#include <ckpt/foreign.hpp>
#include <ckpt/detail/foreign/foreign_file.hpp>
#include <ckpt/detail/foreign/bridge.hpp>
#include <ckpt/detail/foreign/restore.hpp>
#include <ckpt/detail/foreign/write.hpp>
#include <ckpt/detail/foreign/import.hpp>

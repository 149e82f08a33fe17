#pragma once
// Forwarding header: POSIX file handling now lives in detail/io/ (one header per concern).
#include <ckpt/detail/io/atomic_file.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/detail/io/page_population.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>

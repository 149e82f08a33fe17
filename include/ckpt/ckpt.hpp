#pragma once
// The one include: `#include <ckpt/ckpt.hpp>`.

#include <ckpt/version.hpp>
#include <ckpt/error.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/fields.hpp>
#include <ckpt/leaf.hpp>
#include <ckpt/eigen.hpp>
#include <ckpt/async.hpp>
#include <ckpt/checkpoint.hpp>
#include <ckpt/reader.hpp>
#include <ckpt/policy.hpp>
#include <ckpt/manager.hpp>
#include <ckpt/interrupt.hpp>

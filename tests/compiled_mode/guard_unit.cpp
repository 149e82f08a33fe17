// One unit of a two-unit program: routes the library's warnings. Built once header-only and once
// in compiled mode by link_guard.cmake, with guard_main.cpp likewise.
#include <ckpt/warning.hpp>

#include <string>

int warnings_seen = 0;

void count_warnings() {
    ckpt::set_warning_handler([](const ckpt::warning&) { ++warnings_seen; });
}

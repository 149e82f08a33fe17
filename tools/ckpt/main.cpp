// The `ckpt` command-line tool: look into checkpoints without writing C++.
//
//   ckpt ls DIR                 checkpoints a manager keeps in DIR
//   ckpt inspect FILE [--json]  metadata and every entry, checksums checked
//   ckpt verify FILE|DIR        every checksum and structure; non-zero exit when anything is wrong
//   ckpt diff A B               entries added, removed, changed; exit 0 only when identical
//   ckpt export FILE --format npz|safetensors -o OUT
//
// Exit status: 0 success, 1 a check found a problem (verify, diff, inspect), 2 bad usage or input.

#include <CLI/CLI.hpp>

#include <iostream>

#include "export.hpp"
#include "inspect.hpp"
#include "list.hpp"
#include "sharded.hpp"

namespace {

// Tensors of a checkpoint, as the exporters take them. Other entries are skipped with a note.
int export_file(const std::filesystem::path& file, const std::string& format, const std::filesystem::path& out) {
    ckpt::reader r(file);
    std::vector<std::string> blocks;  // reserved up front: the tensors point into it
    std::vector<ckpt::tool::export_tensor> tensors;
    blocks.reserve(r.entries().size());
    std::uint64_t total = 0;
    for (const auto& e : r.entries()) total += e.length;
    ckpt::tool::progress bar("reading", total);
    for (const auto& e : r.entries()) {
        if (e.kind != ckpt::entry_kind::tensor) {
            if (e.kind != ckpt::entry_kind::sequence && e.kind != ckpt::entry_kind::mapping)
                std::cerr << "note: skipped " << e.path << " (" << ckpt::entry_kind_name(e.kind) << ", not a tensor)\n";
            continue;
        }
        blocks.push_back(r.read_bytes(e));
        bar.advance(e.length);
        ckpt::tool::export_tensor t;
        t.name = e.path;
        t.type = e.dtype;
        t.dims = e.shape;
        t.column_major = e.column_major;
        t.bytes = blocks.back();
        tensors.push_back(std::move(t));
    }
    if (format == "npz") {
        ckpt::tool::write_npz(out, tensors);
    } else {
        std::map<std::string, std::string> metadata = r.metadata().strings;
        metadata["ckpt.save_counter"] = std::to_string(r.metadata().save_counter);
        metadata["ckpt.wall_time"] = ckpt::tool::iso_time(r.metadata().wall_time);
        if (r.metadata().step) metadata["ckpt.step"] = std::to_string(*r.metadata().step);
        for (const auto& [k, v] : r.metadata().metrics) metadata["ckpt.metric." + k] = std::to_string(v);
        for (const auto& name : ckpt::tool::write_safetensors(out, tensors, metadata))
            std::cerr << "note: skipped " << name << " (complex numbers have no safetensors dtype)\n";
    }
    std::cout << "wrote " << out.string() << " (" << tensors.size() << " tensors)\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ckpt: list, inspect, verify, compare and export ckpt checkpoints"};
    app.require_subcommand(1);

    std::string dir, file, a, b, format, out;
    bool json = false;
    auto* ls = app.add_subcommand("ls", "List the checkpoints a checkpoint_manager keeps in a directory");
    ls->add_option("DIR", dir, "checkpoint directory")->required();
    auto* inspect = app.add_subcommand("inspect", "Show the metadata and every entry of a checkpoint file");
    inspect->add_option("FILE", file, "checkpoint file")->required();
    inspect->add_flag("--json", json, "machine-readable output");
    auto* verify = app.add_subcommand("verify", "Check every checksum and the structure of a file, or of every checkpoint in a directory");
    verify->add_option("PATH", file, "checkpoint file or directory")->required();
    auto* diff = app.add_subcommand("diff", "Compare two checkpoints entry by entry; exit status 0 only when identical");
    diff->add_option("A", a, "first checkpoint")->required();
    diff->add_option("B", b, "second checkpoint")->required();
    auto* exp = app.add_subcommand("export", "Export the tensors of a checkpoint to .npz (numpy) or safetensors");
    exp->add_option("FILE", file, "checkpoint file")->required();
    exp->add_option("--format", format, "npz or safetensors")->required()->check(CLI::IsMember({"npz", "safetensors"}));
    exp->add_option("-o,--output", out, "output file")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    try {
        if (*ls) return ckpt::tool::list(dir, std::cout);
        if (*inspect) return ckpt::tool::is_sharded(file) ? ckpt::tool::inspect_sharded(file, json, std::cout) : ckpt::tool::inspect(file, json, std::cout);
        if (*verify) return ckpt::tool::verify_any(file, std::cout, std::cerr);
        if (*diff) return ckpt::tool::diff_any(a, b, std::cout);
        if (*exp) return export_file(file, format, out);
    } catch (const ckpt::error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "ckpt: " << e.what() << "\n";
        return 2;
    }
    return 2;
}
